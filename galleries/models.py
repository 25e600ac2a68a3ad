"""Client galleries: what a studio's client sees, from a link in a message.

A `Gallery` shows one client's chosen portraits (`GalleryPortrait`), behind an unguessable share link, an optional
password and an optional download PIN, until it expires or staff revoke it. The client favorites portraits,
asks "more like me" (`GalleryRequest`: a render job whose result joins the gallery) and downloads what they are
entitled to (`Entitlement`: which portrait, at which size, how many downloads; the billing issue creates them from
paid orders, staff may grant them). `GalleryEvent` records views, favorites, downloads and requests for the
studio's statistics. `GallerySettings` holds the studio's defaults (one row per studio).

Everything here is tenant-owned. Passwords and PINs are stored as Django password hashes, never in clear.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from tenants.models import TenantOwned


def new_share_token() -> str:
    """An unguessable share-link token (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


class GallerySettings(TenantOwned):
    """The studio's gallery defaults (one row per studio, created on first use)."""

    download_limit = models.PositiveIntegerField(
        default=5, help_text="Downloads allowed per entitled portrait and size (0: unlimited)."
    )
    expiry_days = models.PositiveIntegerField(default=30, help_text="Days a new gallery stays open (0: no expiry).")
    reminder_days = models.PositiveIntegerField(default=3, help_text="Days before expiry the client is reminded.")
    allow_more_like_me = models.BooleanField(default=True, help_text="New galleries let clients ask for more likeness.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "gallery settings"
        constraints = [models.UniqueConstraint(fields=["studio"], name="gallerysettings_one_per_studio")]

    def __str__(self) -> str:
        return f"Gallery settings of studio {self.studio_id}"


class Gallery(TenantOwned):
    """A client's gallery of portraits behind a share link."""

    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="galleries")
    # A group's gallery (one link for the family): it shows the group's portraits; `client` is the member it is
    # sent to. Empty: a gallery of the client's own portraits.
    group = models.ForeignKey(
        "clients.ClientGroup", on_delete=models.CASCADE, null=True, blank=True, related_name="galleries"
    )
    title = models.CharField(max_length=150)
    message = models.TextField(blank=True, help_text="A welcome note shown at the top of the gallery.")
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    password_hash = models.CharField(max_length=128, blank=True, help_text="Empty: no password.")
    pin_hash = models.CharField(max_length=128, blank=True, help_text="Download PIN; empty: none.")
    expires_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True, help_text="When the 'gallery ready' email went out.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    pin_digits = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="How many digits the PIN has; empty: set before it was recorded."
    )
    secret_locked_at = models.DateTimeField(
        null=True, blank=True, help_text="Locked after too many wrong passwords or PINs (galleries/access.py)."
    )
    secret_unlocked_at = models.DateTimeField(null=True, blank=True, help_text="When an owner last unlocked it.")
    secret_unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    allow_more_like_me = models.BooleanField(default=True)
    # The picture at the top of the client's gallery: one of its portraits (its watermarked preview); empty: the
    # studio's gallery cover (Studio.gallery_cover), if it has one.
    cover_portrait = models.ForeignKey(
        "generation.Portrait", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    download_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Downloads per entitled portrait; empty: the studio's setting."
    )
    run = models.ForeignKey(
        "generation.RenderRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="galleries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "galleries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "client", "-created_at"], name="gallery_studio_client"),
            # The dashboard's galleries shared last and never opened (galleries.selectors).
            models.Index(
                fields=["studio", "-shared_at", "-id"],
                name="gallery_studio_shared",
                condition=models.Q(shared_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def has_pin(self) -> bool:
        return bool(self.pin_hash)

    @property
    def is_secret_locked(self) -> bool:
        """Locked after too many wrong passwords or PINs: nobody new gets in until an owner unlocks it."""
        return self.secret_locked_at is not None


class GalleryPortrait(TenantOwned):
    """A portrait shown in a gallery. The portrait must be of the gallery's client (services check it)."""

    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="entries")
    portrait = models.ForeignKey("generation.Portrait", on_delete=models.CASCADE, related_name="gallery_entries")
    position = models.PositiveIntegerField(default=0)
    is_favorite = models.BooleanField(default=False)
    favorited_at = models.DateTimeField(null=True, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["gallery", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["studio", "gallery", "portrait"], name="galleryportrait_unique"),
        ]
        indexes = [models.Index(fields=["studio", "gallery", "position"], name="galleryportrait_order")]

    def __str__(self) -> str:
        return f"Portrait {self.portrait_id} in gallery {self.gallery_id}"


class GalleryRequest(TenantOwned):
    """A client's "more like me" on a gallery portrait: the render job, and the new portrait once it exists."""

    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="requests")
    source = models.ForeignKey("generation.Portrait", on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    result = models.ForeignKey(
        "generation.Portrait", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["studio", "gallery", "-created_at"], name="galleryrequest_gallery")]

    def __str__(self) -> str:
        return f"More like me of portrait {self.source_id} in gallery {self.gallery_id}"


class Entitlement(TenantOwned):
    """What a client may download: one portrait of a gallery at one size, a number of times. Created by a paid
    order (billing) or granted by staff; revoked by a refund or by staff."""

    class Size(models.TextChoices):
        FULL = "full", gettext_lazy("Full resolution")
        WEB = "web", gettext_lazy("Web size (2048 px)")

    class Source(models.TextChoices):
        ORDER = "order", gettext_lazy("Paid order")
        STAFF = "staff", gettext_lazy("Granted by staff")

    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="entitlements")
    portrait = models.ForeignKey("generation.Portrait", on_delete=models.CASCADE, related_name="entitlements")
    size = models.CharField(max_length=10, choices=Size.choices, default=Size.FULL)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STAFF)
    order_ref = models.CharField(max_length=100, blank=True, help_text="The order that paid for it (billing).")
    download_limit = models.PositiveIntegerField(default=0, help_text="0: unlimited.")
    downloads = models.PositiveIntegerField(default=0)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["studio", "gallery", "portrait"], name="entitlement_lookup")]

    def __str__(self) -> str:
        return f"{self.get_size_display()} of portrait {self.portrait_id} ({self.get_source_display()})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def downloads_left(self) -> int | None:
        """None: unlimited."""
        if not self.download_limit:
            return None
        return max(0, self.download_limit - self.downloads)


class GalleryEvent(TenantOwned):
    """One thing that happened in a gallery, for the studio's statistics (no personal data beyond the act)."""

    class Kind(models.TextChoices):
        VIEW = "view", gettext_lazy("Viewed")
        UNLOCK = "unlock", gettext_lazy("Unlocked with the password")
        FAVORITE = "favorite", gettext_lazy("Favorited")
        UNFAVORITE = "unfavorite", gettext_lazy("Unfavorited")
        DOWNLOAD = "download", gettext_lazy("Downloaded")
        ZIP = "zip", gettext_lazy("Downloaded a ZIP")
        MORE_LIKE_ME = "more_like_me", gettext_lazy("Asked for more likeness")
        EMAIL = "email", gettext_lazy("Email sent")

    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    portrait = models.ForeignKey(
        "generation.Portrait", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["studio", "gallery", "kind", "created_at"], name="galleryevent_stats")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} in gallery {self.gallery_id}"
