"""Who may open a client's gallery, and what with: the share link, the password, the download PIN.

- **The share link** (`/g/<token>/`, 192 random bits) is looked up in the current studio only: another studio's
  token is as unknown here as a made-up one (404, the same page). A revoked link and an expired gallery are a
  410 page that says so, with the studio's contact.
- **The password** (optional) is checked with `check_password` (constant time, the hasher's own comparison).
  Success is stored in the browser's session per gallery, as an HMAC of the gallery's *current* password hash:
  when staff change or remove the password, every session that opened the gallery with the old one is out.
- **The download PIN** (optional) works the same way, with a flag of its own: browsing needs the password,
  downloading also the PIN.
- **Throttling**: wrong passwords (and PINs, counted apart) are counted per gallery and client IP in Django's
  cache; after GALLERY_PASSWORD_ATTEMPTS (default 10) within GALLERY_PASSWORD_WINDOW_SECONDS (default 900) the
  gallery refuses that IP, right password or not, until the window has passed (429 "Too many attempts, try
  again in N minutes").
- **Media**: the previews and downloads of a gallery are signed media links whose audience is the gallery
  (`g:<id>`, tenants/media.py); :func:`media_allowed` is what serving them checks, at every request.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import dateformat, timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from galleries.models import Entitlement, Gallery, GalleryPortrait

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DEFAULT_ATTEMPTS = 10
DEFAULT_WINDOW_SECONDS = 15 * 60
MAX_SECRET_CHARS = 128
PASSWORD = "password"
PIN = "pin"


# --- Settings, read at call time ------------------------------------------------------------------------------


def max_attempts() -> int:
    return max(1, int(getattr(settings, "GALLERY_PASSWORD_ATTEMPTS", DEFAULT_ATTEMPTS)))


def window_seconds() -> int:
    return max(1, int(getattr(settings, "GALLERY_PASSWORD_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)))


# --- Resolving the link ---------------------------------------------------------------------------------------


class GalleryUnavailable(Exception):
    """The link leads nowhere: unknown (404), revoked or expired (410). `title` and `message` are for the
    client; `closed_on` is the expiry of an expired gallery."""

    def __init__(self, title: str, message: str, status: int, *, closed_on: datetime | None = None) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status
        self.closed_on = closed_on
        self.reason = {404: "unknown", 410: "expired" if closed_on else "revoked"}.get(status, "unknown")


def is_open(gallery: Gallery, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return gallery.revoked_at is None and (gallery.expires_at is None or gallery.expires_at > now)


def check_open(gallery: Gallery, *, studio_name: str = "") -> Gallery:
    """The gallery, or GalleryUnavailable 410 (revoked before expired)."""
    who = studio_name or "the studio"
    if gallery.revoked_at is not None:
        raise GalleryUnavailable("This gallery is closed", f"This gallery link was turned off by {who}.", 410)
    if gallery.expires_at is not None and gallery.expires_at <= timezone.now():
        closed_on = timezone.localtime(gallery.expires_at)
        raise GalleryUnavailable(
            "This gallery has closed",
            f"This gallery closed on {dateformat.format(closed_on, 'j F Y')}.",
            410,
            closed_on=closed_on,
        )
    return gallery


def resolve_gallery(*, token: str, studio_name: str = "") -> Gallery:
    """The open gallery with this share token in the current studio (with its client), or GalleryUnavailable:
    404 unknown (another studio's token included: it doesn't exist here), 410 revoked or expired. One query."""
    token = token or ""
    gallery = None
    if TOKEN_RE.match(token):
        gallery = Gallery.objects.select_related("client").filter(token=token).first()
    if gallery is None:
        raise GalleryUnavailable(
            "Gallery not found",
            "This gallery link doesn't exist. Check that you copied the whole link from the message you got.",
            404,
        )
    return check_open(gallery, studio_name=studio_name)


# --- The session: password and PIN ----------------------------------------------------------------------------


def _session_key(gallery: Gallery, purpose: str) -> str:
    return f"gallery:{gallery.pk}:{purpose}"


def _binding(gallery: Gallery, purpose: str, secret_hash: str) -> str:
    """What the session keeps for an unlocked gallery: an HMAC (keyed by SECRET_KEY) of the gallery and its
    current hash, so a changed password (or PIN) no longer matches."""
    return salted_hmac(f"galleries.access.{purpose}", f"{gallery.studio_id}:{gallery.pk}:{secret_hash}").hexdigest()


def _bound(request: HttpRequest, gallery: Gallery, purpose: str, secret_hash: str) -> bool:
    session = getattr(request, "session", None)
    if session is None:
        return False
    stored = session.get(_session_key(gallery, purpose))
    return isinstance(stored, str) and constant_time_compare(stored, _binding(gallery, purpose, secret_hash))


def has_access(request: HttpRequest, gallery: Gallery) -> bool:
    """May this browser see the gallery? Always without a password; with one, once it was typed (and not
    changed since)."""
    if not gallery.has_password:
        return True
    return _bound(request, gallery, PASSWORD, gallery.password_hash)


def has_pin(request: HttpRequest, gallery: Gallery) -> bool:
    """May this browser download (the PIN part)? Always without a PIN; with one, once it was typed."""
    if not gallery.has_pin:
        return True
    return _bound(request, gallery, PIN, gallery.pin_hash)


def check_secret(secret_hash: str, value: Any) -> bool:
    """Check a typed password or PIN against its stored hash: the hasher's own constant-time comparison. An empty
    or absurdly long value is refused without hashing (the client knows what they typed: nothing to leak)."""
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > MAX_SECRET_CHARS or not secret_hash:
        return False
    return check_password(value, secret_hash)


def _grant(request: HttpRequest, gallery: Gallery, purpose: str, secret_hash: str) -> None:
    session = request.session
    if purpose == PASSWORD and not session.is_empty():
        session.cycle_key()  # a new session id once unlocked (no fixation)
    session[_session_key(gallery, purpose)] = _binding(gallery, purpose, secret_hash)


def unlock(request: HttpRequest, gallery: Gallery, password: Any) -> bool:
    """Check the password (throttled: call :func:`locked_for` first) and remember success in the session."""
    if not gallery.has_password:
        return True
    ok = check_secret(gallery.password_hash, password)
    if ok:
        clear_failures(request, gallery, PASSWORD)
        _grant(request, gallery, PASSWORD, gallery.password_hash)
    else:
        record_failure(request, gallery, PASSWORD)
    return ok


def unlock_pin(request: HttpRequest, gallery: Gallery, pin: Any) -> bool:
    if not gallery.has_pin:
        return True
    ok = check_secret(gallery.pin_hash, pin)
    if ok:
        clear_failures(request, gallery, PIN)
        _grant(request, gallery, PIN, gallery.pin_hash)
    else:
        record_failure(request, gallery, PIN)
    return ok


# --- Throttling -----------------------------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _throttle_key(request: HttpRequest, gallery: Gallery, purpose: str) -> str:
    ip = hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]
    return f"galleries:attempts:{purpose}:{gallery.studio_id}:{gallery.pk}:{ip}"


def locked_for(request: HttpRequest, gallery: Gallery, purpose: str = PASSWORD) -> int:
    """Seconds this IP must still wait before trying again at this gallery (0: it may try)."""
    until = cache.get(_throttle_key(request, gallery, purpose) + ":locked")
    if not isinstance(until, int | float):
        return 0
    return max(0, math.ceil(until - time.time()))


def record_failure(request: HttpRequest, gallery: Gallery, purpose: str = PASSWORD) -> int:
    """Count a wrong attempt; returns the seconds to wait when this one reached the limit (else 0)."""
    key = _throttle_key(request, gallery, purpose)
    window = window_seconds()
    cache.add(key, 0, timeout=window)  # the window starts with the first failure
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    if count >= max_attempts():
        cache.set(key + ":locked", time.time() + window, timeout=window)
        cache.delete(key)
        return window
    return 0


def clear_failures(request: HttpRequest, gallery: Gallery, purpose: str = PASSWORD) -> None:
    cache.delete(_throttle_key(request, gallery, purpose))


def wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many attempts, try again in {minutes} minute{'s' if minutes != 1 else ''}."


# --- Media of a gallery (tenants/media.py, audience "g:<id>") -------------------------------------------------


def visible_entry_filter(gallery: Gallery) -> dict[str, Any]:
    """The filter every read of a gallery's portraits uses: entries of this gallery whose portrait belongs to the
    gallery's client and is not hidden (checked in the query, not trusted from when the entry was added)."""
    return {"gallery": gallery, "portrait__double__client_id": gallery.client_id, "portrait__is_hidden": False}


def media_allowed(request: HttpRequest, *, gallery_id: int, label: str, pk: Any, field: str, variant: str = "") -> bool:
    """Whether a media link made for gallery `gallery_id` may serve `label.field` of object `pk` to this request:
    the gallery is open and this browser may see it; the object is a portrait shown in that gallery; the
    watermarked preview needs nothing more; the full-resolution image needs the download PIN (when the gallery
    has one) and an active entitlement of that gallery: full size for the PNG, full or web for the web JPEG.
    Download counts are claimed when the link is made (galleries.client_services), not here."""
    if label != "generation.portrait" or field not in ("preview", "image") or not isinstance(pk, int):
        return False
    gallery = Gallery.objects.filter(pk=gallery_id).first()
    if gallery is None or not is_open(gallery) or not has_access(request, gallery):
        return False
    if not GalleryPortrait.objects.filter(**visible_entry_filter(gallery), portrait_id=pk).exists():
        return False
    if field == "preview":
        return not variant
    if not has_pin(request, gallery):
        return False
    if variant not in ("", "web"):
        return False
    sizes = [Entitlement.Size.FULL] if not variant else [Entitlement.Size.FULL, Entitlement.Size.WEB]
    return Entitlement.objects.filter(gallery=gallery, portrait_id=pk, revoked_at__isnull=True, size__in=sizes).exists()
