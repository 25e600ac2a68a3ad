"""The intake models in the studio back office (tenants/admin_scoping.py: scoped rows, role permissions, 404 for
another studio's ids).

The admin is a window, not a second way around the privacy rules:
- nothing that holds files can be deleted here (a plain row delete would leave the files in storage and write no
  deletion receipt): a client is erased with the "Erase" action, which calls clients.services.erase_client;
- photos, sets and consent texts are read-only (verdicts come from validation, consent texts are versioned and
  published on the consent page); the client's details can be corrected, their consent cannot be edited;
- deletion receipts are the audit log: read-only, never deleted;
- an upload link's token (the client's credential) is never shown; links are revoked with an action;
- photo files are shown only as a thumbnail through a signed, expiring media link, never a storage path;
- only owners and managers see these models here (personal data): staff and photographers work on the clients
  pages, which apply the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html

from clients import services
from clients.models import Client, ConsentText, DeletionReceipt, Photo, PhotoSet, UploadLink
from tenants.admin_scoping import MANAGING_ROLES, StudioScopedAdmin, admin_role, request_studio
from tenants.context import current_studio_id
from tenants.media import signed_media_url
from tenants.services import ActionRefused


class IntakeAdmin(StudioScopedAdmin):
    """Owners and managers only (and platform superusers)."""

    viewer_roles = MANAGING_ROLES
    editor_roles = MANAGING_ROLES


class ReadOnlyAdmin(IntakeAdmin):
    """View only: no add, no change, no delete (for every role, owners and superusers included)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Client)
class ClientAdmin(IntakeAdmin):
    list_display = ["name", "email", "phone", "status", "has_consent", "created_at"]
    list_filter = ["status", "consent_method"]
    search_fields = ["name", "email", "phone"]
    fields = [
        "name",
        "email",
        "phone",
        "notes",
        "status",
        "created_at",
        "created_by",
        "consent_text",
        "consent_given_at",
        "consent_ip",
        "consent_method",
        "consent_collected_by",
    ]
    consent_fields = ["consent_text", "consent_given_at", "consent_ip", "consent_method", "consent_collected_by"]
    actions = ["erase"]

    @admin.display(boolean=True, description="Consent")
    def has_consent(self, client: Client) -> bool:
        return client.has_consent

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return self.scope_readonly_fields(request, obj, ["created_at", "created_by", *self.consent_fields])

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erase instead: files leave storage and a receipt is written

    def has_erase_permission(self, request: HttpRequest) -> bool:
        role = admin_role(request)
        return request_studio(request) is not None and role in MANAGING_ROLES

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Erase the selected clients (everything about them, with a deletion receipt)")
    def erase(self, request: HttpRequest, queryset: models.QuerySet[Client]) -> None:
        count = 0
        for client in queryset:
            try:
                services.erase_client(client=client, performed_by=request.user)
            except ActionRefused as exc:
                self.message_user(request, f"{client}: {exc.message}", messages.ERROR)
                continue
            count += 1
        self.message_user(request, f"{count} client(s) erased; deletion receipts recorded.", messages.SUCCESS)

    erase.allowed_permissions = ("erase",)  # type: ignore[attr-defined]


@admin.register(ConsentText)
class ConsentTextAdmin(ReadOnlyAdmin):
    list_display = ["version", "created_at", "created_by"]
    list_select_related = ["created_by"]
    fields = ["version", "body", "created_at", "created_by"]
    readonly_fields = fields


@admin.register(PhotoSet)
class PhotoSetAdmin(ReadOnlyAdmin):
    list_display = ["id", "client", "status", "created_at", "retention_until", "purged_at"]
    list_filter = ["status"]
    list_select_related = ["client"]
    search_fields = ["client__name"]
    fields = ["client", "status", "created_at", "created_by", "retention_until", "purged_at", "validation_job"]
    readonly_fields = fields


@admin.register(Photo)
class PhotoAdmin(ReadOnlyAdmin):
    """Photos and their verdicts. The files are never linked by path: the preview is a signed media link."""

    list_display = ["id", "photo_set", "status", "reason_code", "source", "original_name", "uploaded_at"]
    list_filter = ["status", "reason_code", "source"]
    list_select_related = ["photo_set", "photo_set__client"]
    search_fields = ["original_name"]
    fields = [
        "preview",
        "photo_set",
        "status",
        "reason_code",
        "reason",
        "source",
        "original_name",
        "detected_format",
        "width",
        "height",
        "size_bytes",
        "sharpness",
        "brightness",
        "identity_distance",
        "uploaded_at",
        "validated_at",
        "files_deleted_at",
    ]
    readonly_fields = fields

    @admin.display(description="Thumbnail")
    def preview(self, photo: Photo) -> str:
        # Inside a studio only (the platform admin has no studio to sign for); the link is for members.
        if not photo.thumbnail or current_studio_id() != photo.studio_id:
            return "—"
        url = signed_media_url(obj=photo, field="thumbnail")
        return format_html('<img src="{}" alt="" class="admin-preview">', url)


@admin.register(UploadLink)
class UploadLinkAdmin(IntakeAdmin):
    """Self-upload links. The token is the client's credential and is never shown; revoke with the action."""

    list_display = ["id", "photo_set", "is_usable", "created_at", "expires_at", "revoked_at", "uploads"]
    list_select_related = ["photo_set", "photo_set__client"]
    fields = ["photo_set", "created_at", "created_by", "expires_at", "revoked_at", "last_used_at", "uploads"]
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(boolean=True, description="Usable")
    def is_usable(self, link: UploadLink) -> bool:
        return link.is_usable

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created on the photo set's page (which shows the link to send)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected upload links", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: models.QuerySet[UploadLink]) -> None:
        count = 0
        for link in queryset.filter(revoked_at__isnull=True):
            services.revoke_upload_link(link=link)
            count += 1
        self.message_user(request, f"{count} upload link(s) revoked.", messages.SUCCESS)


@admin.register(DeletionReceipt)
class DeletionReceiptAdmin(ReadOnlyAdmin):
    """The audit log of deletions: ids and counts, no personal data. Never changed, never deleted."""

    list_display = ["performed_at", "kind", "client_ref", "photo_set_ref", "performed_by"]
    list_filter = ["kind"]
    list_select_related = ["performed_by"]
    fields = ["kind", "client_ref", "photo_set_ref", "performed_by", "performed_at", "counts"]
    readonly_fields = fields
