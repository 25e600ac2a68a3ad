"""Who may open a client's gallery, and what with: the share link, the password, the download PIN.

- **The share link** (`/g/<token>/`, 192 random bits) is looked up in the current studio only: another studio's
  token is as unknown here as a made-up one (404, the same page). A revoked link and an expired gallery are a
  410 page that says so, with the studio's contact.
- **The password** (optional) is checked with `check_password` (constant time, the hasher's own comparison).
  Success is stored in the browser's session per gallery, as an HMAC of the gallery's *current* password hash:
  when staff change or remove the password, every session that opened the gallery with the old one is out.
- **The download PIN** (optional) works the same way, with a flag of its own: browsing needs the password,
  downloading also the PIN.
- **Guessing** (django-ratelimit's counters in the default cache, settings read at call time): wrong passwords
  and PINs (each secret counted apart) are limited twice. Per gallery and client address (an IPv6 address
  with its whole /64): GALLERY_SECRET_ADDRESS_RATE (default 10 per 15 minutes), then that address waits (429
  "Too many attempts, try again in N minutes"), right secret or not. Per gallery across every address:
  GALLERY_SECRET_GALLERY_RATE (default 20 per 30 days), then the gallery LOCKS (`Gallery.secret_locked_at`,
  in the database): nobody new gets in, right secret or not, from anywhere (423, "contact the studio"),
  the studio's owners and managers are emailed, and an owner unlocks it on the gallery's page or the API
  (galleries.services.unlock_secrets), which starts every count again. A guess is counted before it is
  checked and a right one is given back, so guesses made at the same moment can't slip past either limit.
- **Media**: the previews and downloads of a gallery are signed media links whose audience is the gallery
  (`g:<id>`, tenants/media.py); :func:`media_allowed` is what serving them checks, at every request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from galleries.models import Entitlement, Gallery, GalleryPortrait
from tenants import ratelimits
from tenants.i18n import client_date
from tenants.media import Audience, MediaField, ObjectCheck, register_audience
from tenants.ratelimits import rate_setting
from tenants.refusals import Refused

log = structlog.get_logger("galleries")

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_SECRET_CHARS = 128
PASSWORD = "password"
PIN = "pin"
# Settings, read at call time (studio_saas/settings.py, docs/galleries.md).
DEFAULT_ADDRESS_RATE = "10/15m"
DEFAULT_GALLERY_RATE = "20/30d"
DEFAULT_IPV6_PREFIX = 64
# django-ratelimit groups: every guess is counted in GUESS_GROUP before it is checked; a right one is also counted
# in RIGHT_GROUP (it gives its guess back), so the wrong guesses are the difference.
GUESS_GROUP = "galleries.secret.guess"
RIGHT_GROUP = "galleries.secret.right"

# --- Resolving the link ---------------------------------------------------------------------------------------


class GalleryUnavailable(Refused):
    """The link leads nowhere: unknown (404), revoked or expired (410). `title` and `message` are for the
    client; `closed_on` is the expiry of an expired gallery."""

    def __init__(self, title: str, message: str, status: int, *, closed_on: datetime | None = None) -> None:
        super().__init__(message, status)
        self.title = title
        self.closed_on = closed_on
        self.reason = {404: "unknown", 410: "expired" if closed_on else "revoked"}.get(status, "unknown")


def is_open(gallery: Gallery, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return gallery.revoked_at is None and (gallery.expires_at is None or gallery.expires_at > now)


def check_open(gallery: Gallery, *, studio_name: str = "") -> Gallery:
    """The gallery, or GalleryUnavailable 410 (revoked before expired)."""
    who = studio_name or _("the studio")
    if gallery.revoked_at is not None:
        raise GalleryUnavailable(
            _("This gallery is closed"), _("This gallery link was turned off by %(who)s.") % {"who": who}, 410
        )
    if gallery.expires_at is not None and gallery.expires_at <= timezone.now():
        closed_on = timezone.localtime(gallery.expires_at)
        raise GalleryUnavailable(
            _("This gallery has closed"),
            _("This gallery closed on %(date)s.") % {"date": client_date(closed_on)},
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
        gallery = Gallery.objects.select_related("client", "group").filter(token=token).first()
    if gallery is None:
        raise GalleryUnavailable(
            _("Gallery not found"),
            _("This gallery link doesn't exist. Check that you copied the whole link from the message you got."),
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


@dataclass(frozen=True)
class Attempt:
    """What typing a password or PIN came to: `ok` (the session is unlocked); else `locked` (the gallery is
    locked: 423, ask the studio), `wait` (this address waits that many seconds: 429), or just wrong (403)."""

    ok: bool
    locked: bool = False
    wait: int = 0


def unlock(request: HttpRequest, gallery: Gallery, password: Any) -> Attempt:
    """Check the password (counted, see "Guessing" above) and remember success in the session."""
    if not gallery.has_password:
        return Attempt(ok=True)
    return _attempt(request, gallery, PASSWORD, gallery.password_hash, password)


def unlock_pin(request: HttpRequest, gallery: Gallery, pin: Any) -> Attempt:
    """Check the download PIN (counted, see "Guessing" above) and remember success in the session."""
    if not gallery.has_pin:
        return Attempt(ok=True)
    return _attempt(request, gallery, PIN, gallery.pin_hash, pin)


# --- Guessing: per address and per gallery (django-ratelimit) -------------------------------------------------


def address_rate() -> tuple[int, int]:
    """Wrong guesses one address (an IPv6 /64) may make at one gallery's secret, and the window in seconds."""
    return rate_setting("GALLERY_SECRET_ADDRESS_RATE", DEFAULT_ADDRESS_RATE)


def gallery_rate() -> tuple[int, int]:
    """Wrong guesses at one gallery's secret from every address together before the gallery locks."""
    return rate_setting("GALLERY_SECRET_GALLERY_RATE", DEFAULT_GALLERY_RATE)


def ipv6_prefix() -> int:
    return min(128, max(1, int(getattr(settings, "GALLERY_SECRET_IPV6_PREFIX", DEFAULT_IPV6_PREFIX))))


def address_bucket(request: HttpRequest) -> str:
    """Whose guesses count together (tenants.ratelimits.address_bucket, with GALLERY_SECRET_IPV6_PREFIX)."""
    return ratelimits.address_bucket(request, ipv6_prefix=ipv6_prefix())


def _counter(gallery: Gallery, purpose: str, secret_hash: str) -> str:
    """The gallery's counter for this secret: a new one when the secret changes (its hash's fingerprint) and when
    an owner unlocks the gallery (the unlock's moment): both start every count again."""
    fingerprint = salted_hmac("galleries.access.guesses", secret_hash).hexdigest()[:16]
    generation = int(gallery.secret_unlocked_at.timestamp() * 1_000_000) if gallery.secret_unlocked_at else 0
    return f"gallery:{gallery.pk}:{purpose}:{fingerprint}:{generation}"


@dataclass(frozen=True)
class _Count:
    taken: int  # wrong guesses in this window, this one included (a guess is counted before it is checked)
    limit: int
    time_left: int
    failed: bool = False  # the cache didn't answer: refuse (closed)


def _take(request: HttpRequest, value: str, rate: tuple[int, int]) -> _Count | None:
    """Count this guess before checking it, so that guesses made at the same moment can't all slip under the
    limit: django-ratelimit's counter of guesses (atomic increment) minus its counter of right ones (a right
    secret gives its guess back). None: django-ratelimit is switched off (RATELIMIT_ENABLE)."""
    guesses = ratelimits.usage(request, GUESS_GROUP, value, rate, increment=True)
    if guesses is None:
        return None
    if guesses["limit"] == 0:  # django-ratelimit's answer when the cache failed
        return _Count(taken=0, limit=rate[0], time_left=60, failed=True)
    right = ratelimits.usage(request, RIGHT_GROUP, value, rate, increment=False)
    given_back = right["count"] if right and right["limit"] else 0
    return _Count(taken=guesses["count"] - given_back, limit=guesses["limit"], time_left=guesses["time_left"])


def _give_back(request: HttpRequest, value: str, rate: tuple[int, int]) -> None:
    ratelimits.usage(request, RIGHT_GROUP, value, rate, increment=True)


def _attempt(request: HttpRequest, gallery: Gallery, purpose: str, secret_hash: str, value: Any) -> Attempt:
    from galleries import services

    if gallery.is_secret_locked:
        return Attempt(ok=False, locked=True)
    counter = _counter(gallery, purpose, secret_hash)
    by_address = f"{counter}:address:{address_bucket(request)}"
    address_limit, gallery_limit = address_rate(), gallery_rate()
    mine = _take(request, by_address, address_limit)
    if mine is not None and (mine.failed or mine.taken > mine.limit):
        if mine.failed:
            log.error("gallery_guess_count_failed", gallery_id=gallery.pk)
        return Attempt(ok=False, wait=max(1, mine.time_left))
    everyone = _take(request, counter, gallery_limit)
    if everyone is not None and (everyone.failed or everyone.taken > everyone.limit):
        if everyone.failed:
            log.error("gallery_guess_count_failed", gallery_id=gallery.pk)
            return Attempt(ok=False, wait=max(1, everyone.time_left))
        services.lock_secrets(gallery=gallery, purpose=purpose)
        return Attempt(ok=False, locked=True)
    if check_secret(secret_hash, value):
        if mine is not None:
            _give_back(request, by_address, address_limit)
        if everyone is not None:
            _give_back(request, counter, gallery_limit)
        _grant(request, gallery, purpose, secret_hash)
        return Attempt(ok=True)
    if everyone is not None and everyone.taken >= everyone.limit:  # that was the last one: the budget is spent
        services.lock_secrets(gallery=gallery, purpose=purpose)
        return Attempt(ok=False, locked=True)
    if mine is not None and mine.taken >= mine.limit:
        return Attempt(ok=False, wait=max(1, mine.time_left))
    return Attempt(ok=False)


def wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many attempts, try again in %(minutes)d minute.",
        "Too many attempts, try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


# --- Media of a gallery (tenants/media.py, audience "g:<id>") -------------------------------------------------


def owner_filter(gallery: Gallery, prefix: str = "") -> dict[str, Any]:
    """Whose portraits a gallery may show (a filter on Portrait, its lookups after `prefix`): a group's gallery,
    the group's portraits; a client's, that client's own (not a group portrait: it belongs to its group's
    gallery, where everyone in it agreed to be shown together)."""
    if gallery.group_id is not None:
        return {f"{prefix}group_id": gallery.group_id}
    return {f"{prefix}double__client_id": gallery.client_id, f"{prefix}group__isnull": True}


def visible_entry_filter(gallery: Gallery) -> dict[str, Any]:
    """The filter every read of a gallery's portraits uses: entries of this gallery whose portrait belongs to the
    gallery's owner (owner_filter) and is not hidden (checked in the query, not trusted from when the entry was
    added)."""
    return {"gallery": gallery, **owner_filter(gallery, "portrait__"), "portrait__is_hidden": False}


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


def gallery_of_request(request: Any) -> Gallery | None:
    """The gallery a client's gallery page resolved (it marks its request: galleries.views_public)."""
    return getattr(getattr(request, "_request", request), "media_gallery", None)


def admit_gallery(request: HttpRequest, entry: MediaField, ref: int, payload: dict[str, Any]) -> ObjectCheck | None:
    """A media link made for gallery `ref` (tenants.media's "gallery" audience): see media_allowed."""
    allowed = media_allowed(
        request, gallery_id=ref, label=entry.label, pk=payload["p"], field=entry.field, variant=payload.get("v", "")
    )
    return _any_object if allowed else None


def _any_object(obj: Any) -> bool:
    return True


def register_media_audience() -> None:
    register_audience(Audience(name="gallery", prefix="g", from_request=gallery_of_request, admits=admit_gallery))
