"""Private media through permission-checked, expiring, signed links.

Client photos (and later doubles and portraits) live in private storage: no public URL, no listing. A page or
the API that shows a file asks for a link with :func:`signed_media_url`; the link is
`<studio>/media/<token>/`, where the token is signed (django.core.signing, with a salt naming the studio) over

    {"m": "<app_label>.<model>", "p": <pk>, "f": "<field>", "a": <audience>, "e": <expiry, unix seconds>}

and :func:`serve_media` answers it only when, in this order:

1. the signature is right for *this* studio's salt (a link made by another studio, or edited, is a 404);
2. it has not expired (`MEDIA_LINK_MAX_AGE_SECONDS`, default 600 s, rounded up to a step of a quarter of it so
   that a page drawn again soon names the same links and the browser keeps its cached images: :func:`link_expiry`;
   a download link expires exactly when asked; a 404 after that);
3. the (model, field) pair is in the registry below (anything else is a 404, even with a valid signature);
4. the caller is the link's audience, checked again at every request (a 404 otherwise, never a 403):
   - `"m"`: a signed-in member of the studio whose role the registry allows for the field;
   - `"k:<id>"`: the API key the link was made for, sent again in the Authorization header (an integration
     fetches the thumbnails the API listed for it); revoking the key kills its links;
   - `"l:<id>"`: the client's self-upload page: no account, so the link stands for the upload link it was
     made for, and only while that upload link is usable (revoking it kills its media links) and only for
     objects of that link's photo set;
   - `"g:<id>"`: the client's gallery (galleries/access.py, :func:`galleries.access.media_allowed`): the
     gallery must be open (not revoked, not expired), the browser's session must have unlocked it when it has a
     password, the portrait must be one of that gallery's own (of its client, not hidden); the full-resolution
     file (and its "web" variant) also needs an active entitlement of that gallery, and the download PIN in the
     session when the gallery has one. A link made for one gallery never serves through another;
5. the object is found through its model's tenant-scoped manager (another studio's object is a 404, as is
   a deleted one) and the file exists in storage.

A token may also name a **variant** (`"v"`: a derivative made on the fly from the stored file, registered with
:func:`register_variant`, e.g. the 2048 px "web" JPEG of a portrait) and ask for a **download** (`"d": 1`:
`Content-Disposition: attachment`).

The file is streamed with FileResponse: the content type comes from the file's first bytes (never from its
name), `Content-Disposition: inline` with a neutral name (never the client's original file name),
`Cache-Control: private, max-age=<at most MEDIA_CACHE_SECONDS and never past the expiry>`,
`X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy.

There is no redirect to a storage URL, ever, not even with S3 (a pre-signed S3 URL is a bearer link that
outlives a revoked upload link, lands in browser history and proxies, and would be reachable by anyone it is
forwarded to until it expires; it also bypasses the role and link checks above). The price: with S3 every image
byte flows through the application server (one worker held per download, egress counted twice). Thumbnails are
small, so that is acceptable; if full-size downloads through S3 become heavy, serve them with a short-lived
pre-signed URL from a dedicated, audited endpoint, or put the app behind a proxy doing X-Accel-Redirect to a
private location. See docs/intake.md.

Registry (who may open what): each app registers its own fields with :func:`register_media` and its own
audiences with :func:`register_audience`, from its AppConfig.ready() (clients/media.py, generation/apps.py,
galleries/access.py, templates_app/apps.py); this module knows no product app.

| model.field              | members' roles              | API keys | client's upload link | client's gallery        |
|--------------------------|-----------------------------|----------|----------------------|-------------------------|
| clients.photo.thumbnail  | every role                  | yes      | yes (its set only)   | no                      |
| clients.photo.original   | owners and managers         | no       | no                   | no                      |
| generation.portrait.image| every role                  | no       | no                   | entitled portraits only |
| generation.portrait.thumbnail | every role             | yes      | no                   | no (not watermarked)    |
| generation.portrait.preview | every role               | yes      | no                   | its own portraits       |

Thumbnails are small derivatives stripped of metadata: everyone who can see the set may see them. Originals are
the files exactly as uploaded (they may carry GPS and other metadata): only owners and managers, signed in, may
open them. Face crops are not served at all (nothing needs them outside validation). A digital double's
encrypted weights are never served either; its portraits are, to every member.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.db import models
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from engine.images import SNIFF_BYTES, encode_clean, sniff_format
from tenants.access import membership_for
from tenants.api_keys import authenticate_key
from tenants.context import require_studio_id
from tenants.models import is_tenant_owned
from tenants.permissions import request_api_key

STUDIO_URLCONF = "studio_saas.urls_studio"
URL_NAME = "media_file"
DEFAULT_MAX_AGE_SECONDS = 600
# How long a browser may keep a served file in its private cache (never past the link's expiry).
MEDIA_CACHE_SECONDS = 300
ALL_ROLES = frozenset({"owner", "manager", "photographer", "staff"})
MANAGING_ROLES = frozenset({"owner", "manager"})

AUDIENCE_MEMBERS = "m"
AUDIENCE_KEY = "k"
AUDIENCE_LINK = "l"
AUDIENCE_GALLERY = "g"

_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heif"}
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}


@dataclass(frozen=True)
class MediaField:
    """A file field that signed links may serve, and to whom."""

    label: str  # "<app_label>.<model_name>", lower case
    field: str
    roles: frozenset[str]  # member roles allowed (signed in)
    api_keys: bool = False  # the studio's API keys (the key the link was made for)
    # Registered audiences by name (register_audience): "upload_link" (the client's self-upload page, for
    # objects of the link's photo set), "gallery" (a client's gallery: galleries.access decides, object by object)
    audiences: frozenset[str] = frozenset()

    @property
    def upload_link(self) -> bool:
        return "upload_link" in self.audiences

    @property
    def gallery(self) -> bool:
        return "gallery" in self.audiences


#: Whether an audience's caller may open one object: a predicate of the object found (e.g. "of the link's
#: photo set"), or None for no.
ObjectCheck = Callable[[models.Model], bool]


@dataclass(frozen=True)
class Audience:
    """A caller without a membership that signed links may be made for, registered by the app that owns it (in
    its AppConfig.ready()): clients registers "upload_link" (the self-upload page), galleries "gallery".

    - `prefix`: its letter in tokens ("l", "g"); a token's audience is "<prefix>:<id>";
    - `from_request(request)`: the object (upload link, gallery) the current request stands for, or None; tried
      in registration order, those with `after_api_keys` after the request's API key;
    - `admits(request, entry, ref, payload)`: checked at every request for a link of this audience: None to
      refuse (a 404), else an ObjectCheck for the object the link names."""

    name: str
    prefix: str
    from_request: Callable[[Any], Any]
    admits: Callable[[HttpRequest, MediaField, int, dict[str, Any]], ObjectCheck | None]
    after_api_keys: bool = False


@dataclass(frozen=True)
class MediaVariant:
    """A derivative of a registered field made on the fly when served (e.g. a portrait's 2048 px web JPEG)."""

    name: str
    max_side: int
    format: str = "JPEG"  # JPEG, PNG or WEBP (engine.images.encode_clean)
    quality: int = 90


_REGISTRY: dict[tuple[str, str], MediaField] = {}
_VARIANTS: dict[tuple[str, str, str], MediaVariant] = {}
_AUDIENCES: dict[str, Audience] = {}
RESERVED_PREFIXES = frozenset({AUDIENCE_MEMBERS, AUDIENCE_KEY})


def register_audience(audience: Audience) -> Audience:
    """Register (or replace, by name: ready() may run twice) an audience of signed media links."""
    if audience.prefix in RESERVED_PREFIXES or ":" in audience.prefix or not audience.prefix:
        raise ValueError(f"The audience prefix {audience.prefix!r} is reserved or malformed")
    taken = next((a for a in _AUDIENCES.values() if a.prefix == audience.prefix and a.name != audience.name), None)
    if taken is not None:
        raise ValueError(f"The audience prefix {audience.prefix!r} is taken by {taken.name!r}")
    _AUDIENCES[audience.name] = audience
    return audience


def _audience_by_prefix(prefix: str) -> Audience | None:
    return next((a for a in _AUDIENCES.values() if a.prefix == prefix), None)


def register_media(
    label: str,
    field: str,
    *,
    roles: frozenset[str],
    api_keys: bool = False,
    audiences: Iterable[str] = (),
) -> MediaField:
    """Allow signed links to serve `label.field` (e.g. "clients.photo", "thumbnail") to these callers: members
    with these roles, the API key a link was made for, and the named registered audiences."""
    entry = MediaField(label.lower(), field, frozenset(roles), api_keys, frozenset(audiences))
    _REGISTRY[(entry.label, field)] = entry
    return entry


def register_variant(label: str, field: str, variant: MediaVariant) -> MediaVariant:
    """Allow links to a registered field to ask for this derivative of it (same audiences as the field)."""
    _VARIANTS[(label.lower(), field, variant.name)] = variant
    return variant


def media_variant(label: str, field: str, name: str) -> MediaVariant | None:
    return _VARIANTS.get((label.lower(), field, name))


def media_field(label: str, field: str) -> MediaField | None:
    return _REGISTRY.get((label.lower(), field))


class MediaNotAllowed(ValueError):
    """signed_media_url was asked for a field the registry does not list (a programming error)."""


# --- Making links ---------------------------------------------------------------------------------------------


def media_salt(studio_id: int) -> str:
    """The signing salt of a studio's media links: a link made by one studio never verifies at another."""
    return f"tenants.media:studio-{studio_id}"


def max_age_seconds() -> int:
    return int(getattr(settings, "MEDIA_LINK_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))


def _label(obj: models.Model) -> str:
    return obj._meta.label_lower


def _audience(request: Any, explicit: dict[str, Any]) -> str:
    for name, obj in explicit.items():
        if obj is not None:
            audience = _AUDIENCES.get(name)
            if audience is None:
                raise MediaNotAllowed(f"No media audience {name!r} is registered")
            return f"{audience.prefix}:{obj.pk}"
    if request is None:
        return AUDIENCE_MEMBERS
    for audience in _AUDIENCES.values():
        if not audience.after_api_keys:
            obj = audience.from_request(request)
            if obj is not None:
                return f"{audience.prefix}:{obj.pk}"
    key = request_api_key(request) if hasattr(request, "auth") else None
    if key is not None:
        return f"{AUDIENCE_KEY}:{key.pk}"
    for audience in _AUDIENCES.values():
        if audience.after_api_keys:
            obj = audience.from_request(request)
            if obj is not None:
                return f"{audience.prefix}:{obj.pk}"
    return AUDIENCE_MEMBERS


def make_media_token(
    *,
    obj: models.Model,
    field: str,
    audience: str = AUDIENCE_MEMBERS,
    max_age: int | None = None,
    variant: str = "",
    download: bool = False,
) -> str:
    """The signed token of a media link (see the module docstring). Runs in the object's studio's context."""
    studio_id = require_studio_id()
    label = _label(obj)
    if media_field(label, field) is None:
        raise MediaNotAllowed(f"{label}.{field} is not served by signed media links: register it in tenants/media.py")
    if variant and media_variant(label, field, variant) is None:
        raise MediaNotAllowed(f"{label}.{field} has no variant {variant!r}: register it in tenants/media.py")
    if getattr(obj, "studio_id", None) != studio_id or obj.pk is None:
        raise MediaNotAllowed("A media link can only be made for a saved object of the current studio.")
    age = max_age_seconds() if max_age is None else int(max_age)
    # A download (a one-time redirect target, a bearer link for its lifetime) expires exactly when asked; a link an
    # <img> shows is rounded up, so that it stays the same URL for a while (browser caching: link_expiry).
    expiry = int(time.time()) + age if download else link_expiry(age)
    payload: dict[str, Any] = {"m": label, "p": obj.pk, "f": field, "a": audience, "e": expiry}
    if variant:
        payload["v"] = variant
    if download:
        payload["d"] = 1
    return _sign(settings.SECRET_KEY, media_salt(studio_id), tuple(payload.items()))


def link_expiry(age: int, *, now: float | None = None) -> int:
    """When a link asked for `age` seconds expires: `now + age` rounded up to a step of a quarter of the age (at
    most 15 minutes). With the token carrying no signing time (:func:`_sign`), the links a page draws again within
    a step are the same URLs, so the browser shows the images it has already (`Cache-Control: private, max-age`,
    never past the expiry) instead of fetching them again on every view. A link lives at most one step longer."""
    step = max(1, min(int(age) // 4, 900))
    moment = int(time.time() if now is None else now) + int(age)
    return -(-moment // step) * step


@functools.lru_cache(maxsize=8192)
def _sign(key: str, salt: str, items: tuple[tuple[str, Any], ...]) -> str:
    """The token of a payload: signed (HMAC of the settings' key and the studio's salt), compressed, no timestamp
    (the payload has its own expiry), so the same payload is the same token, made once per process."""
    return signing.Signer(key=key, salt=salt).sign_object(dict(items), compress=True)


def signed_media_url(
    *,
    obj: models.Model,
    field: str,
    request: HttpRequest | None = None,
    max_age: int | None = None,
    upload_link: Any = None,
    gallery: Any = None,
    variant: str = "",
    download: bool = False,
) -> str:
    """A link that serves `obj.<field>` from private storage to the caller of `request` for `max_age` seconds
    (default MEDIA_LINK_MAX_AGE_SECONDS): to the studio's members with the right role, to the API key the request
    used, on the client's self-upload page (a URL with `link_token`, or `upload_link=` given) to whoever holds
    that upload link while it is usable, or in a client's gallery (`gallery=` given, or a gallery page's request)
    to the browser that may open that gallery. Inside a request the path keeps the studio's prefix (with or
    without `request`); outside one it is relative to the studio's root (`/media/<token>/`). `variant` names a
    registered derivative; `download` serves it as an attachment. No database query.
    Raises MediaNotAllowed for a field the registry doesn't list."""
    token = make_media_token(
        obj=obj,
        field=field,
        audience=_audience(request, {"gallery": gallery, "upload_link": upload_link}),
        max_age=max_age,
        variant=variant,
        download=download,
    )
    # reverse() keeps the script prefix the tenant middleware set for the request (the /s/<slug>/ prefix, or none
    # on the studio's own domain), so the path is right however the studio is addressed.
    return reverse(URL_NAME, urlconf=STUDIO_URLCONF, kwargs={"media_token": token})


# --- Serving them ---------------------------------------------------------------------------------------------


def _not_found() -> Http404:
    return Http404("This media link is invalid or has expired.")


def _decode(token: str, studio_id: int) -> dict[str, Any]:
    if not token or len(token) > 1024:
        raise _not_found()
    signer = signing.Signer(salt=media_salt(studio_id))
    try:
        value = signer.unsign(token)  # the signature first: tampered or another studio's
        if signer.sep in value:  # a timestamped token (signing.dumps: links made before 2026-12)
            payload = signing.loads(token, salt=media_salt(studio_id))
        else:
            payload = signer.unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, zlib.error):  # tampered, another studio's, malformed
        raise _not_found() from None
    if not isinstance(payload, dict):
        raise _not_found()
    label, pk, field, audience, expiry = (payload.get(k) for k in ("m", "p", "f", "a", "e"))
    if not (isinstance(label, str) and isinstance(field, str) and isinstance(audience, str)):
        raise _not_found()
    if not isinstance(pk, int) or isinstance(pk, bool) or not isinstance(expiry, int):
        raise _not_found()
    if not isinstance(payload.get("v", ""), str) or payload.get("d", 0) not in (0, 1):
        raise _not_found()
    if expiry <= time.time():
        raise _not_found()
    return payload


def _check_audience(
    request: HttpRequest, entry: MediaField, audience: str, payload: dict[str, Any]
) -> ObjectCheck | None:
    """Raise 404 unless the caller is the link's audience; returns what the object must also satisfy (for a
    registered audience), else None."""
    kind, _, ref = audience.partition(":")
    if kind == AUDIENCE_MEMBERS and not ref:
        membership = membership_for(request)
        if membership is None or membership.role not in entry.roles:
            raise _not_found()
        return None
    if not ref.isdigit():
        raise _not_found()
    if kind == AUDIENCE_KEY and entry.api_keys:
        header = request.headers.get("Authorization", "").split()
        if len(header) != 2 or header[0].lower() not in ("api-key", "bearer"):
            raise _not_found()
        key = authenticate_key(raw_key=header[1])
        if key is None or key.pk != int(ref):
            raise _not_found()
        return None
    registered = _audience_by_prefix(kind)
    if registered is None or registered.name not in entry.audiences:
        raise _not_found()
    check = registered.admits(request, entry, int(ref), payload)
    if check is None:
        raise _not_found()
    return check


def _sniff(handle: Any) -> str | None:
    head = handle.read(SNIFF_BYTES)
    handle.seek(0)
    return sniff_format(head)


def _variant_response(handle: Any, variant: MediaVariant) -> tuple[HttpResponse, str]:
    """The derivative of an open stored image (closed here), made now: metadata-free, downscaled, never upscaled."""
    try:
        with handle, Image.open(handle) as image:
            image.load()
            data = encode_clean(image, format=variant.format, quality=variant.quality, max_side=variant.max_side)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        raise _not_found() from None
    fmt = variant.format.upper()
    return HttpResponse(data, content_type=_CONTENT_TYPES.get(fmt, "application/octet-stream")), fmt


def serve_media(request: HttpRequest, media_token: str) -> HttpResponse:
    """The view behind a signed media link (see the module docstring). Every failure is the same 404."""
    studio = getattr(request, "studio", None)
    if studio is None:
        raise _not_found()
    payload = _decode(media_token, studio.pk)
    entry = media_field(payload["m"], payload["f"])
    if entry is None:
        raise _not_found()
    variant = None
    if payload.get("v"):
        variant = media_variant(payload["m"], payload["f"], payload["v"])
        if variant is None:
            raise _not_found()
    object_check = _check_audience(request, entry, payload["a"], payload)
    try:
        model = apps.get_model(payload["m"])
    except (LookupError, ValueError):
        raise _not_found() from None
    if not is_tenant_owned(model):
        raise _not_found()
    obj = model._default_manager.filter(pk=payload["p"]).first()  # the tenant-scoped manager: this studio only
    if obj is None:
        raise _not_found()
    if object_check is not None and not object_check(obj):
        raise _not_found()
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    stored = getattr(obj, payload["f"], None)
    if not stored or not getattr(stored, "name", ""):
        raise _not_found()
    try:
        handle = stored.storage.open(stored.name, "rb")
    except (FileNotFoundError, OSError):
        raise _not_found() from None
    try:
        fmt = _sniff(handle)
    except OSError:
        handle.close()
        raise _not_found() from None
    if variant is not None:
        response, fmt = _variant_response(handle, variant)
        suffix = variant.name
    else:
        content_type = _CONTENT_TYPES.get(fmt or "", "application/octet-stream")
        response = FileResponse(handle, content_type=content_type, as_attachment=False)
        suffix = payload["f"]
    filename = f"{payload['m'].split('.')[-1]}-{obj.pk}-{suffix}.{_EXTENSIONS.get(fmt or '', 'bin')}"
    disposition = "attachment" if payload.get("d") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    remaining = max(0, int(payload["e"] - time.time()))
    response["Cache-Control"] = f"private, max-age={min(MEDIA_CACHE_SECONDS, remaining)}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Referrer-Policy"] = "no-referrer"
    response["Vary"] = "Cookie, Authorization"
    return response
