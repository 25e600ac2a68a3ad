"""End clients of a studio, their consent, their photo sets and photos, upload links and deletion receipts.

Everything here is tenant-owned. Files live in private storage under paths that name no person
(`<studio>/<set>/<random>.<ext>`), and are deleted from storage when the privacy lifecycle says so."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clients.reasons import reason_for_client
from tenants.models import TenantOwned, client_language_choices


def _private_path(kind: str, instance: Any, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    ext = ext if ext.isalnum() and len(ext) <= 5 else "bin"
    return f"intake/{instance.studio_id}/{instance.photo_set_id}/{kind}/{uuid.uuid4().hex}.{ext}"


def original_path(instance: Any, filename: str) -> str:
    return _private_path("original", instance, filename)


def derivative_path(instance: Any, filename: str) -> str:
    return _private_path("derived", instance, filename)


class ConsentText(TenantOwned):
    """The studio's consent text, versioned per language: editing creates a new version of that language's text;
    a consent points at the row agreed to, so it records both the language and the version the client read."""

    language = models.CharField(max_length=16, choices=client_language_choices, default="en")
    version = models.PositiveIntegerField()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["studio", "language", "version"], name="consenttext_unique_version")
        ]
        ordering = ["language", "-version"]

    def __str__(self) -> str:
        return f"Consent text v{self.version}" + (f" ({self.language})" if self.language != "en" else "")


class Client(TenantOwned):
    """A studio's end client (not a member: no account)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ARCHIVED = "archived", _("Archived")

    class ConsentMethod(models.TextChoices):
        STAFF = "staff", _("Collected by staff on the client's behalf")
        SELF = "self", _("Given by the client on the upload page")

    name = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # Consent on record: which text, when, from where, and how.
    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    consent_given_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_method = models.CharField(max_length=8, choices=ConsentMethod.choices, blank=True)
    # The client said no to reminders (the unsubscribe link of "your gallery closes soon"); messages about what
    # they asked for (their photos, their order, their new portrait) still go out.
    reminders_opt_out_at = models.DateTimeField(null=True, blank=True)
    consent_collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["studio", "status", "name"], name="client_studio_status_name"),
            # The list's order with its tiebreaker (keyset pages: clients.selectors.CLIENT_LIST_ORDER).
            models.Index(fields=["studio", "name", "id"], name="client_studio_name"),
            # The dashboard's clients added last (clients.selectors.recent_clients).
            models.Index(fields=["studio", "-created_at", "-id"], name="client_studio_created"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_consent(self) -> bool:
        return self.consent_given_at is not None and self.consent_text_id is not None


class ClientSearchTerm(TenantOwned):
    """One trigram (three lower-case characters) of a client's name, email or phone: the index of the clients
    search on PostgreSQL, where row-level security keeps LIKE (not leakproof) out of index conditions but allows
    `=`. Written by a database trigger on clients_client (migration 0004) whenever a client is created or its
    name, email or phone changes, never by the application; deleted with the client. The SQLite default keeps
    none (its search reads the studio's clients). See clients.selectors.clients_list."""

    # No index of its own: the unique (studio, client, term) index serves the deletion of a client's rows.
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+", db_index=False)
    term = models.CharField(max_length=3)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["studio", "client", "term"], name="clientsearchterm_unique")]
        indexes = [models.Index(fields=["studio", "term", "client"], name="clientsearchterm_term")]

    def __str__(self) -> str:
        return self.term


class PhotoSet(TenantOwned):
    """A client's batch of photos for one digital double."""

    class Status(models.TextChoices):
        COLLECTING = "collecting", _("Collecting photos")
        TRAINED = "trained", _("Digital double trained")
        PURGED = "purged", _("Photos deleted")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="photo_sets")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COLLECTING)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # Originals and face crops are deleted at this time if no training used them first.
    retention_until = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)
    # The validation job currently (or last) checking the set.
    validation_job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["studio", "client"], name="photoset_studio_client"),
            models.Index(fields=["studio", "status", "retention_until"], name="photoset_studio_retention"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Photo set {self.pk} of {self.client}"


class Photo(TenantOwned):
    """One uploaded photo and its verdict. The original and the face crop are deleted by the privacy lifecycle;
    the thumbnail (stripped of metadata) is kept so the verdict stays understandable."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Checking")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    class Source(models.TextChoices):
        STUDIO = "studio", _("Studio page")
        API = "api", "API"
        SELF = "self", _("Client's upload link")

    photo_set = models.ForeignKey(PhotoSet, on_delete=models.CASCADE, related_name="photos")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason_code = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text="Why, in words a client understands")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.STUDIO)
    original = models.FileField(upload_to=original_path, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    detected_format = models.CharField(max_length=10, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.FileField(upload_to=derivative_path, max_length=255, blank=True)
    face_crop = models.FileField(upload_to=derivative_path, max_length=255, blank=True)
    phash = models.CharField(max_length=32, blank=True)
    sharpness = models.FloatField(null=True, blank=True)
    brightness = models.FloatField(null=True, blank=True)
    identity_distance = models.FloatField(null=True, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    files_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["studio", "photo_set", "status"], name="photo_studio_set_status")]
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"Photo {self.pk} ({self.get_status_display()})"

    @property
    def client_reason(self) -> str:
        """Why it was refused, in the active language (clients/reasons.py)."""
        return reason_for_client(code=self.reason_code, message=self.reason)


def new_link_token() -> str:
    return secrets.token_urlsafe(24)


class UploadLink(TenantOwned):
    """A client self-upload link: signed, expiring, revocable; no account needed."""

    photo_set = models.ForeignKey(PhotoSet, on_delete=models.CASCADE, related_name="upload_links")
    token = models.CharField(max_length=64, unique=True, default=new_link_token)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    uploads = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["studio", "photo_set"], name="uploadlink_studio_set")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Upload link {self.pk}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class ClientMessage(TenantOwned):
    """One email the studio sent (or is sending) a client about an event (clients/messages.py): rendered in the
    client's language when the event happens, sent by a job after the commit, retried, and never twice for the
    same event (`event_key` is unique in the studio). Listed on the client's page; deleted with the client."""

    class Kind(models.TextChoices):
        PHOTOS_CHECKED = "photos_checked", _("Photos received and checked")
        ORDER_RECEIPT = "order_receipt", _("Order receipt")
        PORTRAIT_READY = "portrait_ready", _("New portrait ready")
        GALLERY_CLOSING = "gallery_closing", _("Gallery closing soon")
        PRINT_UPDATE = "print_update", _("Print order update")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not sent")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    event_key = models.CharField(max_length=200, help_text="The event it tells of: one message per event.")
    to_email = models.EmailField()
    language = models.CharField(max_length=10)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["studio", "event_key"], name="clientmessage_once_per_event")]
        indexes = [models.Index(fields=["studio", "client", "-created_at"], name="clientmessage_client")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to client {self.client_id}"


class DeletionReceipt(TenantOwned):
    """The audit log of deletions: what, when, by whom, with object counts and no personal data."""

    class Kind(models.TextChoices):
        AFTER_TRAINING = "after_training", _("Photos deleted after the digital double was trained")
        RETENTION = "retention", _("Photos deleted at the end of the retention period")
        CLIENT_ERASURE = "client_erasure", _("Everything about a client deleted on request")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Ids only: the client's name and email are personal data and are gone with the client.
    client_ref = models.BigIntegerField(null=True, blank=True)
    photo_set_ref = models.BigIntegerField(null=True, blank=True)
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    performed_at = models.DateTimeField(default=timezone.now)
    counts = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["studio", "-performed_at"], name="receipt_studio_performed")]
        ordering = ["-performed_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.performed_at:%Y-%m-%d %H:%M})"


class ClientGroup(TenantOwned):
    """Several of the studio's clients portrayed together (a couple, a family, friends): "the Martins: Anna, Marc,
    Léa". Each member keeps their own consent and their own digital double; a group run gives each of them one
    slot of a group template (generation.groups), and the group's gallery is one link for all of them. The
    members' order is the default order of the slots (the first member fills {subject_1})."""

    name = models.CharField(max_length=150)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["studio", "name", "id"], name="clientgroup_studio_name")]

    def __str__(self) -> str:
        return self.name


class GroupMember(TenantOwned):
    """One client of a group, at a position (1 = the first slot). Deleted with the client (their erasure) or the
    group."""

    group = models.ForeignKey(ClientGroup, on_delete=models.CASCADE, related_name="members")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="group_memberships")
    position = models.PositiveSmallIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["studio", "group", "client"], name="groupmember_unique_client"),
        ]
        indexes = [
            models.Index(fields=["studio", "group", "position"], name="groupmember_group"),
            models.Index(fields=["studio", "client"], name="groupmember_client"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} in group {self.group_id}"
