"""Covers and reference images, cleaned: decoded with the intake's checks (engine.images.load_photo: type from
the bytes, size, pixels, bombs) and re-encoded as clean JPEGs (no metadata), ready to be stored under neutral
private paths. Nothing here imports torch."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from engine.images import ImageLimits, PhotoRejected, encode_clean_jpeg, load_photo
from templates_app.errors import TemplateError


def _image_limits(min_side: int) -> Any:
    return ImageLimits(
        max_bytes=int(django_settings.INTAKE_MAX_UPLOAD_BYTES),
        max_pixels=int(django_settings.INTAKE_MAX_PIXELS),
        min_side=min_side,
    )


def clean_image(upload: Any, *, min_side: int, max_side: int, what: str) -> bytes:
    """Decode an uploaded image with the intake's checks and return it as a clean JPEG (no metadata, at most
    `max_side` pixels on its long side); TemplateError with the specific reason otherwise."""
    try:
        if hasattr(upload, "seek"):
            upload.seek(0)
        loaded = load_photo(upload, limits=_image_limits(min_side))
    except PhotoRejected as exc:
        raise TemplateError(f"The {what} can't be used: {exc.message}") from None
    return encode_clean_jpeg(loaded.image, quality=95, max_side=max_side)
