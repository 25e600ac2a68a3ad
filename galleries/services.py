"""The studio's gallery actions (writes): the studio's gallery settings, galleries made from a client's
portraits, their access (password, download PIN, expiry, revoking the link), sharing by email, the expiry
reminders, and entitlements granted by staff.

Every function is keyword-only, runs in the current tenant context (a request, a task, `tenant_context()`) and
does its writes in one transaction; email leaves when the transaction commits. Refusals meant for people raise
:class:`GalleryError` with a message and an HTTP status (400 bad input, 404 not in this gallery, 409 the
gallery's state forbids it). Passwords and PINs are stored as Django password hashes, never in clear, and never
leave this module in clear either (no log, no email).

The client's side (opening a gallery, unlocking it, favorites, downloads) is in galleries/client_services.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import Client, ClientGroup, GroupMember
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait, GallerySettings
from galleries.signals import gallery_shared
from generation.models import Portrait, RenderRun
from tenants.access import acting_user
from tenants.context import platform_context, tenant_context
from tenants.emails import studio_base_url
from tenants.i18n import supported_language
from tenants.models import MANAGING_ROLES, Membership, Studio, User
from tenants.refusals import Refused

log = structlog.get_logger("galleries")


def interpolated_lazy(message: Any, **values: Any) -> Any:
    """A lazy translation with its %(name)s placeholders filled in when it is shown (module constants and form
    declarations are evaluated at import time; they are read in the request's language)."""
    return lazy(lambda: str(message) % values, str)()


MAX_TITLE_CHARS = Gallery._meta.get_field("title").max_length
MAX_MESSAGE_CHARS = 5_000
MAX_GALLERY_PORTRAITS = 500
MAX_DOWNLOAD_LIMIT = 1_000
MAX_EXPIRY_DAYS = 365
MAX_REMINDER_DAYS = 30
# A gallery's secrets face GALLERY_SECRET_GALLERY_RATE wrong guesses (20) before the gallery locks (galleries/
# access.py), so a guesser's chance per lock is 20 / 10^digits for a PIN: 1 in 50,000 with 6 digits (1 in 500
# with the 4 digits allowed before). Passwords are chosen by people, so 8 characters at least (NIST SP 800-63B).
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128
MIN_PIN_DIGITS = 6
MAX_PIN_DIGITS = 8
PIN_RE = re.compile(rf"^[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}$")
PIN_RULE = interpolated_lazy(
    gettext_lazy("The download PIN is %(min)s to %(max)s digits."), min=MIN_PIN_DIGITS, max=MAX_PIN_DIGITS
)
REMINDER_BATCH = 500
PUBLIC_URL_NAME = "gallery_public"


class GalleryError(Refused):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave as is" for arguments where None means something


# --- The studio's settings ------------------------------------------------------------------------------------


def gallery_settings() -> GallerySettings:
    """The studio's gallery settings; created with the defaults on first use."""
    current = GallerySettings.objects.first()
    if current is not None:
        return current
    try:
        with transaction.atomic():
            return GallerySettings.objects.create()
    except IntegrityError:  # created at the same moment by another request
        return GallerySettings.objects.get()


def _bounded(value: Any, name: str, low: int, high: int) -> int:
    try:
        if isinstance(value, bool | float):
            raise ValueError
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise GalleryError(_("%(name)s must be a whole number.") % {"name": name}) from None
    if not low <= number <= high:
        raise GalleryError(
            _("%(name)s must be between %(low)s and %(high)s.") % {"name": name, "low": low, "high": high}
        )
    return number


def update_settings(
    *,
    download_limit: int | None = None,
    expiry_days: int | None = None,
    reminder_days: int | None = None,
    allow_more_like_me: bool | None = None,
    user: User | None = None,
) -> GallerySettings:
    """Change the studio's defaults (None: leave as is). Existing galleries keep their own expiry and their own
    "more like me" switch; those without a download limit of their own follow the new one for new grants."""
    current = gallery_settings()
    fields: list[str] = []
    if download_limit is not None:
        current.download_limit = _bounded(download_limit, _("The download limit"), 0, MAX_DOWNLOAD_LIMIT)
        fields.append("download_limit")
    if expiry_days is not None:
        current.expiry_days = _bounded(expiry_days, _("The days a gallery stays open"), 0, MAX_EXPIRY_DAYS)
        fields.append("expiry_days")
    if reminder_days is not None:
        current.reminder_days = _bounded(reminder_days, _("The days of the reminder"), 0, MAX_REMINDER_DAYS)
        fields.append("reminder_days")
    if allow_more_like_me is not None:
        current.allow_more_like_me = bool(allow_more_like_me)
        fields.append("allow_more_like_me")
    if fields:
        current.save(update_fields=[*fields, "updated_at"])
        log.info("gallery_settings_updated", fields=fields, user_id=getattr(acting_user(user), "pk", None))
    return current


def effective_download_limit(*, gallery: Gallery, studio_settings: GallerySettings | None = None) -> int:
    """Downloads per entitled portrait and size: the gallery's own limit, else the studio's (0: unlimited)."""
    if gallery.download_limit is not None:
        return int(gallery.download_limit)
    return int((studio_settings or gallery_settings()).download_limit)


# --- Checks ---------------------------------------------------------------------------------------------------


def _clean_title(title: str, client: Client, group: ClientGroup | None = None) -> str:
    title = " ".join((title or "").split())
    if not title:
        title = f"Portraits of {group.name if group is not None else client.name}"[:MAX_TITLE_CHARS]
    if len(title) > MAX_TITLE_CHARS:
        raise GalleryError(
            _("The title is too long (%(max_title_chars)s characters at most).") % {"max_title_chars": MAX_TITLE_CHARS}
        )
    return title


def _clean_message(message: str) -> str:
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise GalleryError(
            _("The welcome note is too long (%(max_message_chars)s characters at most).")
            % {"max_message_chars": MAX_MESSAGE_CHARS}
        )
    return message


def _password_hash(password: str) -> str:
    password = password or ""
    if password != password.strip():
        raise GalleryError(_("The password can't start or end with a space."))
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise GalleryError(
            _("Choose a password of %(min_password_chars)s to %(max_password_chars)s characters.")
            % {"min_password_chars": MIN_PASSWORD_CHARS, "max_password_chars": MAX_PASSWORD_CHARS}
        )
    return make_password(password)


def _pin_hash(pin: str) -> str:
    pin = str(pin or "").strip()
    if not PIN_RE.match(pin):
        raise GalleryError(str(PIN_RULE))
    return make_password(pin)


def _pin_digits(pin: str) -> int:
    return len(str(pin or "").strip())


def _future(expires_at: datetime) -> datetime:
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    now = timezone.now()
    if expires_at <= now:
        raise GalleryError(_("Choose an expiry date in the future."))
    if expires_at > now + timedelta(days=MAX_EXPIRY_DAYS * 3):
        raise GalleryError(
            _("A gallery can stay open for %(max)s days at most: choose an earlier date.")
            % {"max": MAX_EXPIRY_DAYS * 3}
        )
    return expires_at


def _download_limit(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return _bounded(value, _("The download limit"), 0, MAX_DOWNLOAD_LIMIT)


def _resolve_portraits(
    *, client: Client, portraits: Iterable[Portrait | int], group: ClientGroup | None = None
) -> list[Portrait]:
    """The portraits (objects or ids), in order and without repeats, after checking that each exists in this
    studio, is of this client (a portrait of one person) or of `group` (for a group's gallery: the group's
    portraits only), is shown (not hidden) and has a watermarked preview. GalleryError 400 naming the first
    problem otherwise."""
    wanted: list[int] = []
    for item in portraits:
        pk = item.pk if isinstance(item, Portrait) else item
        try:
            if isinstance(pk, bool):
                raise ValueError
            pk = int(pk)
        except (TypeError, ValueError):
            raise GalleryError(_("“%(item)s” is not a portrait id.") % {"item": item}) from None
        if pk not in wanted:
            wanted.append(pk)
    found = {p.pk: p for p in Portrait.objects.select_related("double").filter(pk__in=wanted)}
    out: list[Portrait] = []
    for pk in wanted:
        portrait = found.get(pk)
        if portrait is None:
            raise GalleryError(_("Portrait #%(pk)s doesn't exist in this studio.") % {"pk": pk})
        if group is not None and portrait.group_id != group.pk:
            raise GalleryError(
                _("Portrait #%(pk)s is not one of the group's portraits: a group's gallery shows those.") % {"pk": pk}
            )
        if group is None and portrait.group_id is not None:
            raise GalleryError(_("Portrait #%(pk)s is a group portrait: it goes in the group's gallery.") % {"pk": pk})
        if group is None and portrait.double.client_id != client.pk:
            raise GalleryError(
                _("Portrait #%(pk)s is of another client: a gallery shows one client's portraits only.") % {"pk": pk}
            )
        if portrait.is_hidden:
            raise GalleryError(
                _("Portrait #%(pk)s is hidden: show it again on its run's page before adding it.") % {"pk": pk}
            )
        if not portrait.preview:
            raise GalleryError(
                _(
                    "Portrait #%(pk)s has no watermarked preview (a test render): only portraits of render runs can "
                    "go in a gallery."
                )
                % {"pk": pk}
            )
        out.append(portrait)
    return out


def run_picks(*, run: RenderRun) -> list[Portrait]:
    """The run's picks that are shown, in rank order within the run's items."""
    return list(
        Portrait.objects.filter(run=run, is_pick=True, is_hidden=False)
        .select_related("double", "item")
        .order_by("item__position", "rank", "pk")
    )


def _lock(gallery: Gallery) -> Gallery:
    locked = Gallery.objects.select_for_update().filter(pk=gallery.pk).first()
    if locked is None:
        raise GalleryError(_("This gallery no longer exists."), status=404)
    return locked


def _copy(target: Gallery, source: Gallery, fields: Sequence[str]) -> Gallery:
    for name in fields:
        setattr(target, name, getattr(source, name))
    return target


# --- Galleries ------------------------------------------------------------------------------------------------


def create_gallery(
    *,
    client: Client,
    title: str = "",
    portraits: Iterable[Portrait | int] | None = None,
    run: RenderRun | None = None,
    password: str = "",
    pin: str = "",
    expires_at: datetime | None = None,
    never_expires: bool = False,
    allow_more_like_me: bool | None = None,
    message: str = "",
    download_limit: int | None = None,
    user: User | None = None,
    group: ClientGroup | None = None,
) -> Gallery:
    """A gallery for a client, in the studio's defaults (expiry, "more like me"). Its portraits: those given,
    else the picks of `run` (shown, `is_pick`); each must be of this client and shown (GalleryError 400 naming
    the portrait). A run of another client is 400; a run with no picks and no portraits chosen is 409.

    `expires_at` None: now + the studio's `expiry_days` (no expiry when that is 0, or with `never_expires`).
    A draft until shared."""
    if client.pk is None or Client.objects.filter(pk=client.pk).first() is None:
        raise GalleryError(_("This client doesn't exist in this studio."), status=404)
    if group is not None and not GroupMember.objects.filter(group_id=group.pk, client_id=client.pk).exists():
        raise GalleryError(_("A group's gallery is sent to one of its people: choose a member of the group."))
    if run is not None:
        found = RenderRun.objects.filter(pk=run.pk).values_list("double__client_id", "group_id").first()
        if found is None:
            raise GalleryError(_("This render run doesn't exist in this studio."), status=404)
        run_client, run_group = found
        if group is not None and run_group != group.pk:
            raise GalleryError(_("This render run is not the group's: choose one of the group's runs."))
        if group is None and run_group is not None:
            raise GalleryError(_("This render run is a group's: its portraits go in the group's gallery."))
        if group is None and run_client != client.pk:
            raise GalleryError(_("This render run is of another client: choose one of the client's runs."))
    if portraits is None:
        chosen = run_picks(run=run) if run is not None else []
        if run is not None and not chosen:
            raise GalleryError(_("This run has no picks yet: pick portraits on its page, or choose them."), status=409)
    else:
        chosen = _resolve_portraits(client=client, portraits=portraits, group=group)
    if len(chosen) > MAX_GALLERY_PORTRAITS:
        raise GalleryError(
            _("A gallery holds %(max_gallery_portraits)s portraits at most.")
            % {"max_gallery_portraits": MAX_GALLERY_PORTRAITS}
        )
    defaults = gallery_settings()
    if expires_at is not None:
        expires_at = _future(expires_at)
    elif defaults.expiry_days and not never_expires:
        expires_at = timezone.now() + timedelta(days=defaults.expiry_days)
    gallery = Gallery(
        client=client,
        group=group,
        title=_clean_title(title, client, group),
        message=_clean_message(message),
        password_hash=_password_hash(password) if password else "",
        pin_hash=_pin_hash(pin) if pin else "",
        pin_digits=_pin_digits(pin) if pin else None,
        expires_at=expires_at,
        allow_more_like_me=defaults.allow_more_like_me if allow_more_like_me is None else bool(allow_more_like_me),
        download_limit=_download_limit(download_limit),
        run=run,
        created_by=acting_user(user),
    )
    with transaction.atomic():
        gallery.save()
        GalleryPortrait.objects.bulk_create(
            [GalleryPortrait(gallery=gallery, portrait=p, position=i) for i, p in enumerate(chosen)]
        )
    log.info(
        "gallery_created", gallery_id=gallery.pk, client_id=client.pk, portraits=len(chosen), run_id=run and run.pk
    )
    return gallery


def update_gallery(
    *,
    gallery: Gallery,
    title: Any = UNSET,
    message: Any = UNSET,
    allow_more_like_me: Any = UNSET,
    download_limit: Any = UNSET,
    expires_at: Any = UNSET,
) -> Gallery:
    """Change a gallery's details (UNSET: leave as is). `download_limit` None: the studio's setting; `expires_at`
    None: never expires (a new date also means a new reminder before it)."""
    with transaction.atomic():
        locked = _lock(gallery)
        fields: list[str] = []
        if title is not UNSET:
            locked.title = _clean_title(title, locked.client, locked.group)
            fields.append("title")
        if message is not UNSET:
            locked.message = _clean_message(message)
            fields.append("message")
        if allow_more_like_me is not UNSET:
            locked.allow_more_like_me = bool(allow_more_like_me)
            fields.append("allow_more_like_me")
        if download_limit is not UNSET:
            locked.download_limit = _download_limit(download_limit)
            fields.append("download_limit")
        if expires_at is not UNSET:
            new = None if expires_at is None else expires_at
            if new is not None and new != locked.expires_at:
                new = _future(new)
            if new != locked.expires_at:
                locked.expires_at = new
                locked.reminder_sent_at = None
                fields += ["expires_at", "reminder_sent_at"]
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
    log.info("gallery_updated", gallery_id=gallery.pk, fields=fields)
    return _copy(gallery, locked, [*fields, "updated_at"])


def add_portraits(*, gallery: Gallery, portraits: Iterable[Portrait | int]) -> list[GalleryPortrait]:
    """Add portraits of the gallery's client at the end (those already in it are left where they are). Returns
    the new entries. GalleryError 400 for a portrait of another client, hidden, unknown, or past the maximum."""
    chosen = _resolve_portraits(client=gallery.client, portraits=portraits, group=gallery.group)
    if not chosen:
        raise GalleryError(_("Choose at least one portrait to add."))
    with transaction.atomic():
        locked = _lock(gallery)
        present = set(GalleryPortrait.objects.filter(gallery=locked).values_list("portrait_id", flat=True))
        new = [p for p in chosen if p.pk not in present]
        if len(present) + len(new) > MAX_GALLERY_PORTRAITS:
            raise GalleryError(
                _("A gallery holds %(max_gallery_portraits)s portraits at most.")
                % {"max_gallery_portraits": MAX_GALLERY_PORTRAITS}
            )
        last = GalleryPortrait.objects.filter(gallery=locked).aggregate(last=Max("position"))["last"]
        start = -1 if last is None else last
        entries = GalleryPortrait.objects.bulk_create(
            [GalleryPortrait(gallery=locked, portrait=p, position=start + 1 + i) for i, p in enumerate(new)]
        )
        Gallery.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    log.info("gallery_portraits_added", gallery_id=gallery.pk, added=len(entries))
    return entries


def remove_portrait(*, gallery: Gallery, portrait: Portrait | int) -> None:
    """Take a portrait out of the gallery (its favorite goes with it). Entitlements already granted for it stay
    on record; the client's side shows only what is in the gallery. GalleryError 404 when it isn't in it."""
    pk = portrait.pk if isinstance(portrait, Portrait) else portrait
    with transaction.atomic():
        deleted, _details = GalleryPortrait.objects.filter(gallery=gallery, portrait_id=pk).delete()
        if not deleted:
            raise GalleryError(_("This portrait is not in the gallery."), status=404)
        Gallery.objects.filter(pk=gallery.pk).update(updated_at=timezone.now())
        # A cover is one of the gallery's portraits: out of the gallery, out of the cover.
        Gallery.objects.filter(pk=gallery.pk, cover_portrait_id=pk).update(cover_portrait=None)
    log.info("gallery_portrait_removed", gallery_id=gallery.pk, portrait_id=pk)


def reorder(*, gallery: Gallery, portrait_ids: Sequence[int]) -> None:
    """Put the gallery's portraits in this order: the ids must be exactly the gallery's portraits."""
    with transaction.atomic():
        locked = _lock(gallery)
        entries = {e.portrait_id: e for e in GalleryPortrait.objects.filter(gallery=locked)}
        try:
            wanted = [int(pk) for pk in portrait_ids]
        except (TypeError, ValueError):
            raise GalleryError(_("List the gallery's portrait ids.")) from None
        if len(wanted) != len(set(wanted)) or set(wanted) != set(entries):
            raise GalleryError(_("List every portrait of the gallery exactly once."))
        changed = []
        for position, pk in enumerate(wanted):
            entry = entries[pk]
            if entry.position != position:
                entry.position = position
                changed.append(entry)
        GalleryPortrait.objects.bulk_update(changed, ["position"])


def set_password(*, gallery: Gallery, password: str) -> Gallery:
    """The client must type this password to open the gallery (stored hashed)."""
    gallery.password_hash = _password_hash(password)
    Gallery.objects.filter(pk=gallery.pk).update(password_hash=gallery.password_hash, updated_at=timezone.now())
    log.info("gallery_password_set", gallery_id=gallery.pk)
    return gallery


def clear_password(*, gallery: Gallery) -> Gallery:
    gallery.password_hash = ""
    Gallery.objects.filter(pk=gallery.pk).update(password_hash="", updated_at=timezone.now())
    log.info("gallery_password_cleared", gallery_id=gallery.pk)
    return gallery


def set_pin(*, gallery: Gallery, pin: str) -> Gallery:
    """Downloads ask for this PIN (MIN_PIN_DIGITS to MAX_PIN_DIGITS digits, stored hashed)."""
    gallery.pin_hash = _pin_hash(pin)
    gallery.pin_digits = _pin_digits(pin)
    Gallery.objects.filter(pk=gallery.pk).update(
        pin_hash=gallery.pin_hash, pin_digits=gallery.pin_digits, updated_at=timezone.now()
    )
    log.info("gallery_pin_set", gallery_id=gallery.pk)
    return gallery


def clear_pin(*, gallery: Gallery) -> Gallery:
    gallery.pin_hash = ""
    gallery.pin_digits = None
    Gallery.objects.filter(pk=gallery.pk).update(pin_hash="", pin_digits=None, updated_at=timezone.now())
    log.info("gallery_pin_cleared", gallery_id=gallery.pk)
    return gallery


def set_expiry(*, gallery: Gallery, expires_at: datetime | None) -> Gallery:
    """Close the gallery at this moment (in the future), or never (None). A new date means a new reminder."""
    return update_gallery(gallery=gallery, expires_at=expires_at)


def extend(*, gallery: Gallery, days: int) -> Gallery:
    """Keep the gallery open `days` more days, counted from its expiry (or from now, when it has passed)."""
    days = _bounded(days, _("The days to extend by"), 1, MAX_EXPIRY_DAYS)
    now = timezone.now()
    start = gallery.expires_at if gallery.expires_at and gallery.expires_at > now else now
    return update_gallery(gallery=gallery, expires_at=start + timedelta(days=days))


def revoke(*, gallery: Gallery) -> Gallery:
    """The share link stops working at once (the client sees that the gallery is closed)."""
    if gallery.revoked_at is None:
        gallery.revoked_at = timezone.now()
        Gallery.objects.filter(pk=gallery.pk).update(revoked_at=gallery.revoked_at, updated_at=timezone.now())
        log.info("gallery_revoked", gallery_id=gallery.pk)
    return gallery


def restore(*, gallery: Gallery) -> Gallery:
    """The same share link works again."""
    if gallery.revoked_at is not None:
        gallery.revoked_at = None
        Gallery.objects.filter(pk=gallery.pk).update(revoked_at=None, updated_at=timezone.now())
        log.info("gallery_restored", gallery_id=gallery.pk)
    return gallery


# --- Locked after too many wrong passwords or PINs (galleries/access.py) ---------------------------------------


def pin_may_be_short(gallery: Gallery) -> bool:
    """A PIN shorter than MIN_PIN_DIGITS, or one set before the length was recorded (it may be 4 digits): still
    accepted (the lock bounds the guessing), but the studio's page asks for a new one."""
    return gallery.has_pin and (gallery.pin_digits is None or gallery.pin_digits < MIN_PIN_DIGITS)


def lock_secrets(*, gallery: Gallery, purpose: str = "password") -> bool:
    """Lock the gallery: the budget of wrong `purpose` guesses (password or PIN) from every address is spent.
    Nobody new gets in until an owner unlocks it. The first call locks it and emails the studio's owners and
    managers (when the transaction commits); later ones (guesses at the same moment) change nothing: False."""
    from galleries import emails

    now = timezone.now()
    with transaction.atomic():
        locked = Gallery.objects.filter(pk=gallery.pk, secret_locked_at__isnull=True).update(secret_locked_at=now)
        if locked:
            row = Gallery.objects.select_related("client").get(pk=gallery.pk)
            studio = Studio.objects.get(pk=gallery.studio_id)
            recipients = (
                Membership.objects.filter(role__in=MANAGING_ROLES, user__is_active=True)
                .order_by("user__email")
                .values_list("user__email", "user__language")
            )
            by_language: dict[str, list[str]] = {}  # one email per language, each in its readers' own
            for email, language in recipients:
                by_language.setdefault(supported_language(language) or "", []).append(email)
            link = studio_root(studio=studio) + _route("gallery_detail", gallery_id=row.pk)
            for language, to in by_language.items():
                message = emails.gallery_locked_message(
                    gallery=row, studio=studio, link=link, purpose=purpose, to=to, language=language
                )
                transaction.on_commit(message.send)
    if locked:
        gallery.secret_locked_at = now
        log.warning("gallery_secret_locked", gallery_id=gallery.pk, purpose=purpose)
    elif gallery.secret_locked_at is None:
        gallery.secret_locked_at = Gallery.objects.filter(pk=gallery.pk).values_list("secret_locked_at", flat=True)[0]
    return bool(locked)


def unlock_secrets(*, gallery: Gallery, user: User | None) -> Gallery:
    """An owner opens a locked gallery again: clients may type the password and PIN again, and every count of
    wrong guesses (per gallery and per address) starts again. Records who and when. 409 when it isn't locked."""
    with transaction.atomic():
        locked = _lock(gallery)
        if locked.secret_locked_at is None:
            raise GalleryError(_("This gallery isn't locked."), status=409)
        locked.secret_locked_at = None
        locked.secret_unlocked_at = timezone.now()
        locked.secret_unlocked_by = acting_user(user)
        locked.save(update_fields=["secret_locked_at", "secret_unlocked_at", "secret_unlocked_by", "updated_at"])
    gallery.secret_locked_at = None
    gallery.secret_unlocked_at = locked.secret_unlocked_at
    gallery.secret_unlocked_by = locked.secret_unlocked_by
    log.info("gallery_secret_unlocked", gallery_id=gallery.pk, user_id=getattr(acting_user(user), "pk", None))
    return gallery


# --- Sharing --------------------------------------------------------------------------------------------------


def _route(name: str, **kwargs: Any) -> str:
    """A studio route without the leading slash or script prefix (to join to the studio's root URL)."""
    route = reverse(name, urlconf=settings.STUDIO_URLCONF, kwargs=kwargs or None)
    prefix = get_script_prefix()
    return route[len(prefix) :] if route.startswith(prefix) else route.lstrip("/")


def studio_root(*, studio: Studio, base_url: str | None = None) -> str:
    """The studio's absolute root URL, ending with "/": as the request saw it, else its configured address."""

    return (base_url or studio_base_url(studio)).rstrip("/") + "/"


def gallery_link(*, gallery: Gallery, base_url: str | None = None) -> str:
    """The absolute share link: the studio's root (as the request saw it, else its configured address) plus the
    client's gallery route. Resolved at call time (the client's pages may be added after this module)."""
    studio = gallery.studio if base_url is None else None
    root = base_url.rstrip("/") + "/" if base_url else studio_root(studio=studio)  # type: ignore[arg-type]
    return root + _route(PUBLIC_URL_NAME, gallery_token=gallery.token)


def _logo_url(studio: Studio, base_url: str | None) -> str | None:
    return studio_root(studio=studio, base_url=base_url) + _route("studio_logo") if studio.logo else None


def _check_shareable(gallery: Gallery) -> None:
    if gallery.revoked_at is not None:
        raise GalleryError(_("This gallery's link is revoked: restore it before sending it."), status=409)
    if gallery.expires_at is not None and gallery.expires_at <= timezone.now():
        raise GalleryError(_("This gallery has expired: extend it before sending it."), status=409)
    if not gallery.client.email:
        raise GalleryError(
            _("%(name)s has no email address: add one on the client's page, or copy the link.")
            % {"name": gallery.client.name},
            status=409,
        )
    if not GalleryPortrait.objects.filter(gallery=gallery).exists():
        raise GalleryError(_("This gallery has no portraits yet: add some before sending it."), status=409)


def share(*, gallery: Gallery, user: User | None = None, base_url: str | None = None) -> Gallery:
    """Email the client that their gallery is ready, with its link (sent when the transaction commits), record
    when, and an EMAIL event. 409 when the client has no email, or the gallery is revoked, expired or empty."""
    from galleries import emails

    _check_shareable(gallery)
    studio = Studio.objects.get(pk=gallery.studio_id)
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(gallery)
        locked.shared_at = now
        locked.save(update_fields=["shared_at", "updated_at"])
        GalleryEvent.objects.create(gallery=locked, kind=GalleryEvent.Kind.EMAIL, detail="gallery ready")
        link = gallery_link(gallery=locked, base_url=base_url)
        message = emails.gallery_ready_message(
            gallery=locked, studio=studio, link=link, logo_url=_logo_url(studio, base_url)
        )
        transaction.on_commit(message.send)
        gallery_shared.send(sender=Gallery, gallery=locked, shared_at=now)
    gallery.shared_at = now
    log.info("gallery_shared", gallery_id=gallery.pk, user_id=getattr(acting_user(user), "pk", None))
    return gallery


def send_expiry_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Platform work, the task of an hourly schedule (galleries/apps.py): for every studio, each gallery that
    closes within the studio's `reminder_days`, was shared before that window began, is not revoked, has had no
    reminder and whose client has an email, gets one reminder (sent on commit) and `reminder_sent_at`.
    Idempotent: a second run sends nothing more. Each gallery in its own studio's context and transaction, so one
    failure doesn't stop the others."""
    from galleries import emails

    now = now or timezone.now()
    with platform_context():
        due = list(
            Gallery.objects.filter(
                expires_at__gt=now,
                expires_at__lte=now + timedelta(days=MAX_REMINDER_DAYS),
                shared_at__isnull=False,
                revoked_at__isnull=True,
                reminder_sent_at__isnull=True,
            )
            .exclude(client__email="")
            .order_by("expires_at")
            .values_list("pk", "studio_id")[:REMINDER_BATCH]
        )
    by_studio: dict[int, list[int]] = {}
    for pk, studio_id in due:
        by_studio.setdefault(studio_id, []).append(pk)
    sent = failed = 0
    for studio in Studio.objects.filter(pk__in=by_studio, status=Studio.Status.ACTIVE):
        with tenant_context(studio):
            days = gallery_settings().reminder_days
            if not days:
                continue
            window = now + timedelta(days=days)
            for pk in by_studio[studio.pk]:
                try:
                    with transaction.atomic():
                        gallery = (
                            Gallery.objects.select_for_update(of=("self",))
                            .select_related("client")
                            .filter(
                                pk=pk,
                                expires_at__gt=now,
                                expires_at__lte=window,
                                shared_at__isnull=False,
                                revoked_at__isnull=True,
                                reminder_sent_at__isnull=True,
                            )
                            .first()
                        )
                        if gallery is None or not gallery.client.email:
                            continue
                        if gallery.shared_at > gallery.expires_at - timedelta(days=days):
                            continue  # shared inside the window: the "ready" email already said when it closes
                        gallery.reminder_sent_at = now
                        gallery.save(update_fields=["reminder_sent_at"])
                        GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.EMAIL, detail="reminder")
                        link = gallery_link(gallery=gallery, base_url=studio_root(studio=studio))
                        message = emails.expiry_reminder_message(
                            gallery=gallery, studio=studio, link=link, logo_url=_logo_url(studio, None)
                        )
                        transaction.on_commit(message.send)
                    sent += 1
                except Exception:
                    failed += 1
                    log.exception("gallery_reminder_failed", gallery_id=pk, studio_id=studio.pk)
    if sent or failed:
        log.info("gallery_reminders_sent", sent=sent, failed=failed)
    return {"sent": sent, "failed": failed}


# --- Entitlements ---------------------------------------------------------------------------------------------


def grant_entitlements(
    *, gallery: Gallery, portraits: Iterable[Portrait | int], size: str, user: User | None = None
) -> list[Entitlement]:
    """Let the client download these portraits of the gallery at this size (source: staff), each
    `download_limit` times (the gallery's limit, else the studio's; 0: unlimited). A portrait that already has
    an active entitlement at this size keeps it (returned as is). GalleryError 400 for a portrait that is not in
    the gallery, or an unknown size."""
    if size not in Entitlement.Size.values:
        raise GalleryError(_("Choose a size: %(sizes)s.") % {"sizes": ", ".join(Entitlement.Size.values)})
    wanted: list[int] = []
    for item in portraits:
        try:
            pk = int(item.pk if isinstance(item, Portrait) else item)
        except (TypeError, ValueError):
            raise GalleryError(_("“%(item)s” is not a portrait id.") % {"item": item}) from None
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise GalleryError(_("Choose at least one portrait of the gallery."))
    in_gallery = set(
        GalleryPortrait.objects.filter(gallery=gallery, portrait_id__in=wanted).values_list("portrait_id", flat=True)
    )
    missing = [pk for pk in wanted if pk not in in_gallery]
    if missing:
        raise GalleryError(_("Portrait #%(pk)s is not in this gallery.") % {"pk": missing[0]})
    limit = effective_download_limit(gallery=gallery)
    with transaction.atomic():
        locked = _lock(gallery)
        existing = {
            e.portrait_id: e
            for e in Entitlement.objects.filter(
                gallery=locked, size=size, revoked_at__isnull=True, portrait_id__in=wanted
            )
        }
        out: list[Entitlement] = []
        for pk in wanted:
            if pk in existing:
                out.append(existing[pk])
                continue
            out.append(
                Entitlement.objects.create(
                    gallery=locked,
                    portrait_id=pk,
                    size=size,
                    source=Entitlement.Source.STAFF,
                    download_limit=limit,
                    granted_by=acting_user(user),
                )
            )
    log.info("entitlements_granted", gallery_id=gallery.pk, size=size, portraits=len(wanted))
    return out


def revoke_entitlement(*, entitlement: Entitlement) -> Entitlement:
    """The client can no longer download with it (a refund, or staff changing their mind)."""
    if entitlement.revoked_at is None:
        entitlement.revoked_at = timezone.now()
        Entitlement.objects.filter(pk=entitlement.pk).update(revoked_at=entitlement.revoked_at)
        log.info("entitlement_revoked", entitlement_id=entitlement.pk, gallery_id=entitlement.gallery_id)
    return entitlement


def set_cover(*, gallery: Gallery, portrait: Portrait | int | None) -> Gallery:
    """The picture at the top of the client's gallery: one of its portraits, or None for the studio's gallery
    cover. GalleryError 400 for a portrait that is not in this gallery (another client's, another studio's, or
    unknown: the same answer)."""
    from django.utils.translation import gettext as _

    pk = portrait.pk if isinstance(portrait, Portrait) else portrait
    with transaction.atomic():
        locked = _lock(gallery)
        if pk is not None and not GalleryPortrait.objects.filter(gallery=locked, portrait_id=pk).exists():
            raise GalleryError(_("Portrait #%(number)s is not in this gallery: add it first.") % {"number": pk})
        locked.cover_portrait_id = pk
        locked.save(update_fields=["cover_portrait", "updated_at"])
    gallery.cover_portrait_id = pk
    log.info("gallery_cover_set", gallery_id=gallery.pk, portrait_id=pk)
    return gallery
