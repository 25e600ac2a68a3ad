"""A studio's branding, set by its owner (the branding page): logo, accent colour, watermark text, the gallery
cover, the language of its clients' pages.

The logo is an untrusted upload like any other: read with a size cap, its type taken from its bytes (JPEG, PNG
or WebP; never SVG), decoded under a pixel limit, and stored re-encoded as a metadata-free PNG of at most
LOGO_MAX_SIDE pixels (transparency is flattened onto white). The gallery cover the same way, stored as a
metadata-free JPEG of at most COVER_MAX_SIDE pixels. An old file is deleted once the new one is saved."""

from __future__ import annotations

import secrets
from typing import BinaryIO

import structlog
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from engine.images import ImageLimits, PhotoRejected, encode_clean, load_photo
from tenants.access import acting_user
from tenants.context import tenant_context
from tenants.models import Membership, Role, Studio, User, client_language_choices
from tenants.refusals import Refused

log = structlog.get_logger("tenants.branding")

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_SIDE = 512
LOGO_LIMITS = ImageLimits(
    max_bytes=LOGO_MAX_BYTES,
    max_pixels=16_000_000,
    min_side=32,
    allowed_formats=frozenset({"JPEG", "PNG", "WEBP"}),
)

COVER_MAX_BYTES = 15 * 1024 * 1024
COVER_MAX_SIDE = 2400
COVER_LIMITS = ImageLimits(
    max_bytes=COVER_MAX_BYTES,
    max_pixels=60_000_000,
    min_side=600,
    allowed_formats=frozenset({"JPEG", "PNG", "WEBP"}),
)


class BrandingRefused(Refused):
    """The branding can't be saved as given (the message says why)."""


def clean_logo(upload: BinaryIO) -> bytes:
    """The uploaded logo as a clean PNG, or BrandingRefused with the reason (too big, not an image, ...)."""
    try:
        photo = load_photo(upload, limits=LOGO_LIMITS)
    except PhotoRejected as exc:
        raise BrandingRefused(
            _("This logo can't be used: %(reason)s") % {"reason": exc.message}, code=f"logo_{exc.code}"
        ) from None
    return encode_clean(photo.image, format="PNG", max_side=LOGO_MAX_SIDE)


def clean_cover(upload: BinaryIO) -> bytes:
    """The uploaded gallery cover as a clean JPEG, or BrandingRefused with the reason."""
    try:
        photo = load_photo(upload, limits=COVER_LIMITS)
    except PhotoRejected as exc:
        raise BrandingRefused(
            _("This cover can’t be used: %(reason)s") % {"reason": exc.message}, code=f"cover_{exc.code}"
        ) from None
    return encode_clean(photo.image, format="JPEG", max_side=COVER_MAX_SIDE)


def update_branding(
    *,
    studio: Studio,
    user: User | None,
    primary_color: str,
    watermark_text: str,
    logo_png: bytes | None = None,
    remove_logo: bool = False,
    client_language: str | None = None,
    cover_jpeg: bytes | None = None,
    remove_cover: bool = False,
) -> Studio:
    """Save the owner's branding. Owners only (403 otherwise). `logo_png` comes from clean_logo, `cover_jpeg` from
    clean_cover."""
    with tenant_context(studio), transaction.atomic():
        who = acting_user(user)
        membership = Membership.objects.filter(user_id=getattr(who, "pk", None)).first()
        if membership is None or membership.role != Role.OWNER:
            raise BrandingRefused(_("Only the studio's owner can change its branding."), status=403, code="owner_only")
        studio = Studio.objects.select_for_update().get(pk=studio.pk)
        old_logo = studio.logo.name if studio.logo else ""
        old_cover = studio.gallery_cover.name if studio.gallery_cover else ""
        studio.primary_color = primary_color.lower()
        studio.watermark_text = watermark_text.strip()
        if client_language is not None:
            if client_language not in dict(client_language_choices()):
                raise BrandingRefused(_("Choose one of the languages offered."), code="client_language")
            studio.client_language = client_language
        if logo_png is not None:
            studio.logo.save(f"{studio.slug}-{secrets.token_hex(6)}.png", ContentFile(logo_png), save=False)
        elif remove_logo:
            studio.logo = ""
        if cover_jpeg is not None:
            studio.gallery_cover.save(f"{studio.slug}-{secrets.token_hex(6)}.jpg", ContentFile(cover_jpeg), save=False)
        elif remove_cover:
            studio.gallery_cover = ""
        studio.save(update_fields=["primary_color", "watermark_text", "logo", "client_language", "gallery_cover"])
        new_logo = studio.logo.name if studio.logo else ""
        new_cover = studio.gallery_cover.name if studio.gallery_cover else ""
        for old, new, field in ((old_logo, new_logo, studio.logo), (old_cover, new_cover, studio.gallery_cover)):
            if old and old != new:
                transaction.on_commit(lambda storage=field.storage, name=old: storage.delete(name))
    log.info(
        "branding_updated",
        studio_id=studio.pk,
        logo=bool(new_logo),
        removed=remove_logo,
        cover=bool(new_cover),
        cover_removed=remove_cover,
    )
    return studio
