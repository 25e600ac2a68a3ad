"""What the client does in their gallery (reads and writes): the portraits they see, favorites, "more like me",
downloads they are entitled to (single files and ZIPs), and the events the studio's statistics count.

Keyword-only, typed, run in the current tenant context (the gallery's request). Refusals meant for the client
raise :class:`ClientActionError` with a message written for them (never internals) and an HTTP status.
Who may open the gallery at all (link, password, PIN) is galleries/access.py; the studio's side is
galleries/services.py.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from engine.images import encode_clean
from galleries.access import owner_filter, visible_entry_filter
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait, GalleryRequest
from galleries.paging import PageNumbers
from galleries.services import MAX_GALLERY_PORTRAITS
from galleries.signals import gallery_viewed
from generation import portraits, runs
from generation.models import DigitalDouble, Portrait
from generation.portraits import can_go_more_like_me
from jobs.models import Job
from tenants.media import signed_media_url
from tenants.refusals import Refused

log = structlog.get_logger("galleries.client")

DEFAULT_MAX_PENDING = 3
DEFAULT_POLL_SECONDS = 3
DEFAULT_PREVIEW_LINK_SECONDS = 3600
DEFAULT_DOWNLOAD_LINK_SECONDS = 120
DEFAULT_PAGE_SIZE = 48  # tiles per page of the client's gallery: the first screen costs the same at any size
MAX_PAGE_NUMBER = 10_000
FAILED_SHOWN_FOR = timedelta(days=1)
WEB_SIDE = 2048
PENDING_STATES = (Job.State.QUEUED, Job.State.RUNNING)
SIZES = (Entitlement.Size.FULL, Entitlement.Size.WEB)


class ClientActionError(Refused):
    """A refusal for the client: `message` is shown as is, `status` is the HTTP status."""


# --- Settings, read at call time ------------------------------------------------------------------------------


def max_pending_requests() -> int:
    return max(1, int(getattr(settings, "GALLERY_MAX_PENDING_REQUESTS", DEFAULT_MAX_PENDING)))


def poll_seconds() -> int:
    return max(1, int(getattr(settings, "GALLERY_POLL_SECONDS", DEFAULT_POLL_SECONDS)))


def preview_link_seconds() -> int:
    return max(60, int(getattr(settings, "GALLERY_PREVIEW_LINK_SECONDS", DEFAULT_PREVIEW_LINK_SECONDS)))


def download_link_seconds() -> int:
    return max(10, int(getattr(settings, "GALLERY_DOWNLOAD_LINK_SECONDS", DEFAULT_DOWNLOAD_LINK_SECONDS)))


def page_size() -> int:
    """Tiles per page of the client's gallery (GALLERY_PAGE_SIZE, 48 by default)."""
    return max(1, int(getattr(settings, "GALLERY_PAGE_SIZE", DEFAULT_PAGE_SIZE)))


# --- Events ---------------------------------------------------------------------------------------------------


def record_event(*, gallery: Gallery, kind: str, portrait: Portrait | int | None = None, detail: str = "") -> None:
    portrait_id = portrait.pk if isinstance(portrait, Portrait) else portrait
    GalleryEvent.objects.create(gallery=gallery, kind=kind, portrait_id=portrait_id, detail=detail[:200])


def record_view(*, request: HttpRequest, gallery: Gallery) -> bool:
    """A VIEW event at most once per browser session and day. True when one was recorded."""
    key = f"gallery:{gallery.pk}:viewed"
    today = timezone.localdate().isoformat()
    if request.session.get(key) == today:
        return False
    request.session[key] = today
    with transaction.atomic():
        record_event(gallery=gallery, kind=GalleryEvent.Kind.VIEW)
        gallery_viewed.send(sender=Gallery, gallery=gallery, viewed_at=timezone.now())
    return True


# --- What the client sees -------------------------------------------------------------------------------------


def visible_entries(*, gallery: Gallery) -> QuerySet[GalleryPortrait]:
    """The gallery's entries the client sees, in order, with their portrait and its double (one query): only
    portraits of the gallery's own client, not hidden, filtered in the query itself."""
    return (
        GalleryPortrait.objects.filter(**visible_entry_filter(gallery))
        .select_related("portrait__double")
        .order_by("position", "id")
    )


def get_entry(*, gallery: Gallery, portrait_id: Any) -> GalleryPortrait:
    """The visible entry of this portrait, or ClientActionError 404 (not in the gallery, another client's or
    another studio's portrait, hidden: all the same)."""
    try:
        pk = int(portrait_id)
    except (TypeError, ValueError):
        pk = 0
    entry = visible_entries(gallery=gallery).filter(portrait_id=pk).first() if pk > 0 else None
    if entry is None:
        raise ClientActionError(_("This portrait is not in your gallery."), 404)
    return entry


@dataclass(frozen=True)
class Order:
    """The gallery's visible entries in order, as ids (what pages, counts and neighbours are computed from)."""

    entry_ids: list[int]
    portrait_ids: list[int]
    favorite_ids: frozenset[int]  # entry ids

    def __len__(self) -> int:
        return len(self.entry_ids)


def gallery_order(*, gallery: Gallery) -> Order:
    """The visible entries' ids in order, in two single-table queries of small columns (no objects): the
    gallery's entries, then which of their portraits are the gallery's client's and not hidden. Joining the
    entries to their portraits and doubles instead let the planner (its row estimates thrown off by row-level
    security's filter) walk every portrait of the double for each entry: 50-80 ms at 500 portraits, quadratic."""
    rows = list(
        GalleryPortrait.objects.filter(gallery=gallery)
        .order_by("position", "id")
        .values_list("id", "portrait_id", "is_favorite")
    )
    shown = set(
        Portrait.objects.filter(
            pk__in=[portrait_id for _, portrait_id, _ in rows], **owner_filter(gallery), is_hidden=False
        ).values_list("id", flat=True)
    )
    entry_ids, portrait_ids, favorites = [], [], set()
    for entry_id, portrait_id, is_favorite in rows:
        if portrait_id not in shown:
            continue
        entry_ids.append(entry_id)
        portrait_ids.append(portrait_id)
        if is_favorite:
            favorites.add(entry_id)
    return Order(entry_ids, portrait_ids, frozenset(favorites))


def entries_by_ids(*, gallery: Gallery, entry_ids: Sequence[int]) -> list[GalleryPortrait]:
    """These entries of the gallery, in this order, with their portrait and its double: three single-table
    queries by primary key (entries, portraits, doubles), so no join plan can go wrong."""
    if not entry_ids:
        return []
    found = {
        e.pk: e
        for e in GalleryPortrait.objects.filter(gallery=gallery, pk__in=list(entry_ids)).prefetch_related(
            "portrait__double"
        )
    }
    return [found[pk] for pk in entry_ids if pk in found]


def entries_in_order(*, gallery: Gallery) -> list[GalleryPortrait]:
    """Every visible entry, in order, with its portrait and double (two queries)."""
    return entries_by_ids(gallery=gallery, entry_ids=gallery_order(gallery=gallery).entry_ids)


@dataclass(frozen=True)
class Counts:
    """The gallery's portraits as the client sees them: how many, how many hearted, how many the client may
    download (an active entitlement: "Download all" shows), how many at full size (bought: the others can still
    be bought, on whichever page they are), the newest entry's id."""

    portraits: int
    favorites: int
    entitled: int
    last_entry_id: int
    full_entitled: int = 0

    @property
    def unbought(self) -> int:
        return self.portraits - self.full_entitled


def counts(*, gallery: Gallery, order: Order) -> Counts:
    """The counts of the gallery's order, and one query for the portraits with an active entitlement."""
    rows = set(
        Entitlement.objects.filter(gallery=gallery, revoked_at__isnull=True)
        .order_by()
        .values_list("portrait_id", "size")
        .distinct()
    )
    entitled = {portrait_id for portrait_id, _ in rows}
    full = {portrait_id for portrait_id, size in rows if size == Entitlement.Size.FULL}
    return Counts(
        portraits=len(order),
        favorites=len(order.favorite_ids),
        entitled=sum(1 for pk in order.portrait_ids if pk in entitled),
        last_entry_id=max(order.entry_ids, default=0),
        full_entitled=sum(1 for pk in order.portrait_ids if pk in full),
    )


@dataclass(frozen=True)
class Page(PageNumbers):
    """One page of the gallery's tiles: `number` (1-based), the entries on it, the one just before it (the
    viewer's "previous" across the page boundary), and whether more follow."""

    entries: list[GalleryPortrait]
    before: GalleryPortrait | None


def parse_page(value: Any) -> int:
    """A page number from the query string: 1 for anything that isn't a positive number."""
    if isinstance(value, str) and value.isdigit() and len(value) < 7:
        return max(1, min(int(value), MAX_PAGE_NUMBER))
    return 1


def page_entries(*, gallery: Gallery, order: Order, number: int, favorites_only: bool = False) -> Page:
    """The entries of page `number` (past the last page: the last page) and the entry before it: one query of
    at most page_size() + 1 rows, whatever the size of the gallery."""
    ids = [pk for pk in order.entry_ids if pk in order.favorite_ids] if favorites_only else order.entry_ids
    size = page_size()
    pages = max(1, -(-len(ids) // size))
    number = max(1, min(number, pages))
    offset = (number - 1) * size
    start = max(0, offset - 1)
    rows = entries_by_ids(gallery=gallery, entry_ids=ids[start : offset + size])
    before = rows.pop(0) if offset > 0 and rows else None
    return Page(number=number, size=size, total=len(ids), entries=rows, before=before)


def page_of(*, order: Order, portrait_id: int) -> int:
    """The page the portrait is on in the client's gallery (1 when it isn't in it)."""
    try:
        return order.portrait_ids.index(portrait_id) // page_size() + 1
    except ValueError:
        return 1


@dataclass
class Offer:
    """A size the client may download a portrait at, and how many downloads are left (None: unlimited)."""

    size: str
    label: str
    left: int | None

    @property
    def available(self) -> bool:
        return self.left is None or self.left > 0


def size_label(size: str) -> str:
    """The name of a download size in the client's language."""
    if size == Entitlement.Size.FULL:
        return _("Full resolution")
    return _("Web size (%(side)d px)") % {"side": WEB_SIDE}


def _offers(entitlements: Sequence[Entitlement]) -> list[Offer]:
    offers = []
    for size in SIZES:
        mine = [e for e in entitlements if e.size == size]
        if not mine:
            continue
        lefts = [e.downloads_left for e in mine]
        left = None if any(x is None for x in lefts) else sum(x or 0 for x in lefts)
        offers.append(Offer(size=str(size), label=size_label(size), left=left))
    return offers


def active_entitlements(*, gallery: Gallery, portrait_ids: Sequence[int] | None = None) -> dict[int, list[Entitlement]]:
    """The gallery's active entitlements by portrait id (one query); only those of `portrait_ids` when given."""
    by_portrait: dict[int, list[Entitlement]] = {}
    qs = Entitlement.objects.filter(gallery=gallery, revoked_at__isnull=True)
    if portrait_ids is not None:
        qs = qs.filter(portrait_id__in=list(portrait_ids))
    for entitlement in qs.order_by("pk"):
        by_portrait.setdefault(entitlement.portrait_id, []).append(entitlement)
    return by_portrait


def can_ask_more(gallery: Gallery, portrait: Portrait) -> bool:
    """Whether the "More like me" button shows: the studio allows it in this gallery, the double is ready and
    the portrait's recipe can still get closer to the client (no query: the double comes with the entry)."""

    if not gallery.allow_more_like_me:
        return False
    recipe = portrait.recipe or {}
    if "recipe_version" not in recipe or portrait.double.status != DigitalDouble.Status.READY:
        return False
    return can_go_more_like_me(portrait)


@dataclass
class Tile:
    """One portrait as the gallery page shows it."""

    entry: GalleryPortrait
    portrait: Portrait
    number: int
    preview_url: str
    width: int
    height: int
    offers: list[Offer] = field(default_factory=list)
    can_more: bool = False
    pending: bool = False
    base_url: str = ""  # the gallery's page, "/…/g/<token>/": the tile's links are built on it (no reverse() each)

    @property
    def id(self) -> int:
        return self.portrait.pk

    @property
    def url(self) -> str:
        return f"{self.base_url}p/{self.portrait.pk}/"

    @property
    def favorite_url(self) -> str:
        return f"{self.url}favorite/"

    @property
    def more_url(self) -> str:
        return f"{self.url}more/"

    @property
    def download_url(self) -> str:
        return f"{self.url}download/"

    @property
    def best_offer(self) -> Offer | None:
        """The size the tile's download button takes: the first with downloads left (full before web)."""
        return next((o for o in self.offers if o.available), self.offers[0] if self.offers else None)


def preview_size(portrait: Portrait) -> tuple[int, int]:
    """The preview's pixel size from the recipe (the preview is the image at 1024 px at most), for the <img>
    width/height attributes (no layout shift); 4:5 when unknown."""
    recipe = portrait.recipe or {}
    width, height = recipe.get("width"), recipe.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return 800, 1000
    scale = min(1.0, 1024 / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def tiles(
    *,
    gallery: Gallery,
    entries: Sequence[GalleryPortrait],
    entitlements: dict[int, list[Entitlement]],
    pending_sources: set[int] | frozenset[int] = frozenset(),
    start: int = 1,
) -> list[Tile]:
    """Tiles for these entries: the watermarked preview's signed link (made for this gallery; no query), the
    sizes the client may download, and whether "More like me" shows."""
    from django.urls import reverse

    age = preview_link_seconds()
    base_url = reverse("gallery_public", kwargs={"gallery_token": gallery.token})
    out = []
    for number, entry in enumerate(entries, start=start):
        portrait = entry.portrait
        width, height = preview_size(portrait)
        url = signed_media_url(obj=portrait, field="preview", gallery=gallery, max_age=age) if portrait.preview else ""
        out.append(
            Tile(
                entry=entry,
                portrait=portrait,
                number=number,
                preview_url=url,
                width=width,
                height=height,
                offers=_offers(entitlements.get(portrait.pk, [])),
                can_more=can_ask_more(gallery, portrait),
                pending=portrait.pk in pending_sources,
                base_url=base_url,
            )
        )
    return out


# --- Favorites ------------------------------------------------------------------------------------------------


def set_favorite(*, gallery: Gallery, entry: GalleryPortrait, favorite: bool) -> GalleryPortrait:
    """Heart or unheart a portrait of the gallery (an event only when it changes)."""
    favorite = bool(favorite)
    if entry.is_favorite == favorite:
        return entry
    now = timezone.now()
    changed = GalleryPortrait.objects.filter(pk=entry.pk, is_favorite=not favorite).update(
        is_favorite=favorite, favorited_at=now if favorite else None
    )
    entry.is_favorite, entry.favorited_at = favorite, (now if favorite else None)
    if changed:
        kind = GalleryEvent.Kind.FAVORITE if favorite else GalleryEvent.Kind.UNFAVORITE
        record_event(gallery=gallery, kind=kind, portrait=entry.portrait_id)
    return entry


# --- More like me ---------------------------------------------------------------------------------------------


@dataclass
class RequestStatus:
    pending: list[GalleryRequest] = field(default_factory=list)
    failed: list[GalleryRequest] = field(default_factory=list)
    arrived: list[GalleryRequest] = field(default_factory=list)  # fulfilled by this call
    full: list[GalleryRequest] = field(default_factory=list)  # done, but the gallery is at its cap: left out

    @property
    def pending_sources(self) -> set[int]:
        return {r.source_id for r in self.pending}


def full_message() -> str:
    return _(
        "This gallery is full: it holds %(count)d portraits at most. Ask the studio to make room for new ones."
    ) % {"count": MAX_GALLERY_PORTRAITS}


def ask_more_like_me(*, gallery: Gallery, entry: GalleryPortrait) -> GalleryRequest:
    """The client asks for a version of this portrait that looks more like them: a small render job
    (generation.portraits.more_like_me, no user) and a GalleryRequest; its result joins the gallery right after the
    portrait once the job has succeeded (:func:`fulfil_requests`). At most GALLERY_MAX_PENDING_REQUESTS on their
    way per gallery, one per portrait; refused (409) when the gallery's portraits and the requests on their way
    would pass MAX_GALLERY_PORTRAITS."""

    portrait = entry.portrait
    if not gallery.allow_more_like_me:
        raise ClientActionError(_("More like me is not available in this gallery."), 403)
    if not can_ask_more(gallery, portrait):
        raise ClientActionError(_("This portrait is already as close to you as we can make it."), 409)
    with transaction.atomic():
        Gallery.objects.select_for_update().filter(pk=gallery.pk).first()  # one request at a time per gallery
        pending = list(
            GalleryRequest.objects.filter(gallery=gallery, fulfilled_at__isnull=True, job__state__in=PENDING_STATES)
        )
        if any(r.source_id == portrait.pk for r in pending):
            raise ClientActionError(_("A new version of this portrait is already on its way."), 409)
        if len(pending) >= max_pending_requests():
            raise ClientActionError(
                _("New versions are already on their way: wait for them before asking for more."),
                429,
            )
        if GalleryPortrait.objects.filter(gallery=gallery).count() + len(pending) >= MAX_GALLERY_PORTRAITS:
            raise ClientActionError(full_message(), 409)
        try:
            job = portraits.more_like_me(portrait=portrait, user=None)
        except runs.RunError as exc:
            log.warning("gallery_more_like_me_refused", gallery_id=gallery.pk, portrait_id=portrait.pk, why=str(exc))
            raise ClientActionError(_("We can't make a new version of this portrait right now."), 409) from None
        request = GalleryRequest.objects.create(gallery=gallery, source=portrait, job=job)
        record_event(gallery=gallery, kind=GalleryEvent.Kind.MORE_LIKE_ME, portrait=portrait)
    log.info("gallery_more_like_me", gallery_id=gallery.pk, portrait_id=portrait.pk, job_id=job.pk)
    return request


def _insert_after(gallery: Gallery, source_id: int, portrait: Portrait) -> GalleryPortrait | None:
    """Add the portrait to the gallery right after the source's entry (at the end when the source is gone),
    renumbering positions in one bulk update. Idempotent. None, adding nothing, when the gallery already holds
    MAX_GALLERY_PORTRAITS (the cap holds on every path that adds portraits). Call with the gallery's row locked."""
    entries = list(GalleryPortrait.objects.filter(gallery=gallery).order_by("position", "id"))
    existing = next((e for e in entries if e.portrait_id == portrait.pk), None)
    if existing is not None:
        return existing
    if len(entries) >= MAX_GALLERY_PORTRAITS:
        return None
    index = next((i + 1 for i, e in enumerate(entries) if e.portrait_id == source_id), len(entries))
    new = GalleryPortrait.objects.create(gallery=gallery, portrait=portrait, position=index)
    ordered = [*entries[:index], new, *entries[index:]]
    changed = []
    for position, entry in enumerate(ordered):
        if entry.position != position:
            entry.position = position
            changed.append(entry)
    if changed:
        GalleryPortrait.objects.bulk_update(changed, ["position"])
    return new


def fulfil_requests(*, gallery: Gallery) -> RequestStatus:
    """Bring the gallery's "more like me" requests up to date: a request whose job succeeded gets its new
    portrait (the one the job made, child of the source, of the gallery's client) into the gallery right after
    the source, and is marked fulfilled. Returns what is still on its way, what failed recently (shown to the
    client for a day) and what arrived now. One query when nothing changed."""
    status = RequestStatus()
    since = timezone.now() - FAILED_SHOWN_FOR
    open_requests = list(
        GalleryRequest.objects.filter(gallery=gallery, fulfilled_at__isnull=True)
        .filter(Q(job__state__in=[*PENDING_STATES, Job.State.SUCCEEDED]) | Q(created_at__gte=since))
        .select_related("job")
        .order_by("created_at", "id")
    )
    for request in open_requests:
        job = request.job
        if job is not None and job.state in PENDING_STATES:
            status.pending.append(request)
        elif job is not None and job.state == Job.State.SUCCEEDED:
            result = (
                Portrait.objects.filter(job_id=job.pk, parent_id=request.source_id, **owner_filter(gallery))
                .order_by("pk")
                .first()
            )
            if result is None:  # the job made nothing usable (or it was deleted since)
                status.failed.append(request)
                continue
            with transaction.atomic():
                Gallery.objects.select_for_update().filter(pk=gallery.pk).first()  # the cap: one insert at a time
                locked = (
                    GalleryRequest.objects.select_for_update().filter(pk=request.pk, fulfilled_at__isnull=True).first()
                )
                if locked is None:  # fulfilled by a concurrent request
                    continue
                if _insert_after(gallery, request.source_id, result) is None:
                    # The gallery is full (staff added portraits meanwhile): closed without its result, said once.
                    locked.fulfilled_at = timezone.now()
                    locked.save(update_fields=["fulfilled_at"])
                    status.full.append(request)
                    log.warning("gallery_request_over_cap", gallery_id=gallery.pk, request_id=request.pk)
                    continue
                locked.result, locked.fulfilled_at = result, timezone.now()
                locked.save(update_fields=["result", "fulfilled_at"])
            request.result, request.fulfilled_at = result, locked.fulfilled_at
            status.arrived.append(request)
            log.info("gallery_request_fulfilled", gallery_id=gallery.pk, request_id=request.pk, portrait_id=result.pk)
        else:  # failed, cancelled, or its job deleted
            status.failed.append(request)
    return status


# --- Downloads ------------------------------------------------------------------------------------------------


class DownloadRefused(ClientActionError):
    pass


def _claim_one(candidates: Sequence[Entitlement]) -> Entitlement | None:
    """Count one download on the first of these entitlements with downloads left (race-safe: a conditional
    UPDATE). None when every one is used up."""
    for entitlement in candidates:
        limited = Q(download_limit=0) | Q(downloads__lt=F("download_limit"))
        updated = (
            Entitlement.objects.filter(pk=entitlement.pk, revoked_at__isnull=True)
            .filter(limited)
            .update(downloads=F("downloads") + 1)
        )
        if updated:
            entitlement.downloads += 1
            return entitlement
    return None


def _limit_message(entitlements: Sequence[Entitlement]) -> str:
    total = sum(e.download_limit for e in entitlements)
    return ngettext(
        "You have used the %(count)d download of this portrait. Ask the studio if you need it again.",
        "You have used all %(count)d downloads of this portrait. Ask the studio if you need it again.",
        total,
    ) % {"count": total}


def claim_download(*, gallery: Gallery, entry: GalleryPortrait, size: str) -> Entitlement:
    """Count a download of this portrait at this size on an active entitlement of the gallery, or
    DownloadRefused: 404 when there is none (no entitlement, revoked: the same as a portrait not in the gallery),
    403 when its download limit is reached. Records a DOWNLOAD event."""
    if size not in SIZES:
        raise DownloadRefused(_("Choose a size to download."), 400)
    entitlements = list(
        Entitlement.objects.filter(
            gallery=gallery, portrait_id=entry.portrait_id, size=size, revoked_at__isnull=True
        ).order_by("pk")
    )
    if not entitlements:
        raise DownloadRefused(_("This portrait is not available to download."), 404)
    claimed = _claim_one(entitlements)
    if claimed is None:
        raise DownloadRefused(_limit_message(entitlements), 403)
    record_event(gallery=gallery, kind=GalleryEvent.Kind.DOWNLOAD, portrait=entry.portrait_id, detail=size)
    log.info("gallery_download", gallery_id=gallery.pk, portrait_id=entry.portrait_id, size=size)
    return claimed


def download_url(*, gallery: Gallery, portrait: Portrait, size: str) -> str:
    """The expiring signed link of the file at this size, for this gallery's browser (GALLERY_DOWNLOAD_LINK_SECONDS):
    the PNG without watermark (full), or the 2048 px JPEG made from it (web)."""

    variant = "" if size == Entitlement.Size.FULL else "web"
    return signed_media_url(
        obj=portrait,
        field="image",
        gallery=gallery,
        variant=variant,
        download=True,
        max_age=download_link_seconds(),
    )


@dataclass(frozen=True)
class ZipItem:
    portrait_id: int
    size: str


def claim_zip(*, gallery: Gallery) -> list[ZipItem]:
    """Count one download per portrait for "Download all": every portrait shown in the gallery with an active
    entitlement that has downloads left, at its best size (full before web). Portraits at their limit are left
    out. DownloadRefused 404 when nothing is entitled, 403 when everything is used up. One ZIP event."""
    entries = entries_in_order(gallery=gallery)
    entitlements = active_entitlements(gallery=gallery)
    items: list[ZipItem] = []
    entitled = False
    with transaction.atomic():
        for entry in entries:
            mine = entitlements.get(entry.portrait_id, [])
            if not mine:
                continue
            entitled = True
            for size in SIZES:
                claimed = _claim_one([e for e in mine if e.size == size])
                if claimed is not None:
                    items.append(ZipItem(entry.portrait_id, str(size)))
                    break
    if not entitled:
        raise DownloadRefused(_("None of these portraits is available to download yet."), 404)
    if not items:
        raise DownloadRefused(
            _("You have used all the downloads of these portraits. Ask the studio if you need them."), 403
        )
    record_event(gallery=gallery, kind=GalleryEvent.Kind.ZIP, detail=f"{len(items)} portraits")
    log.info("gallery_zip", gallery_id=gallery.pk, portraits=len(items))
    return items


def zip_salt(gallery: Gallery) -> str:
    return f"galleries.zip:studio-{gallery.studio_id}:gallery-{gallery.pk}"


def zip_token(*, gallery: Gallery, items: Sequence[ZipItem]) -> str:
    """A signed, expiring token naming the claimed portraits and sizes (only this gallery's salt verifies it)."""
    payload = {"i": [[item.portrait_id, item.size] for item in items]}
    return signing.dumps(payload, salt=zip_salt(gallery), compress=True)


def read_zip_token(*, gallery: Gallery, token: str) -> list[ZipItem]:
    """The items of a ZIP token of this gallery, or ClientActionError 404 (tampered, another gallery's,
    expired after GALLERY_DOWNLOAD_LINK_SECONDS)."""
    not_found = ClientActionError(_("This download link has expired. Ask for the ZIP again."), 404)
    if not token or len(token) > 8192:
        raise not_found
    try:
        payload = signing.loads(token, salt=zip_salt(gallery), max_age=download_link_seconds())
        items = [ZipItem(int(pk), str(size)) for pk, size in payload["i"]]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise not_found from None
    if not items or any(item.size not in SIZES for item in items):
        raise not_found
    return items


@dataclass(frozen=True)
class ZipEntry:
    name: str
    storage: Any
    path: str
    web: bool


def zip_files(*, gallery: Gallery, items: Sequence[ZipItem]) -> list[ZipEntry]:
    """The files of a ZIP, checked again now: each portrait still shown in the gallery with an active entitlement
    of a size that allows it (full for a full item; full or web for a web item). Two queries."""
    wanted = {item.portrait_id: item.size for item in items}
    entries = entries_in_order(gallery=gallery)  # all of them: a file is numbered by its place
    sizes: dict[int, set[str]] = {}
    for entitlement in Entitlement.objects.filter(
        gallery=gallery, portrait_id__in=list(wanted), revoked_at__isnull=True
    ).values("portrait_id", "size"):
        sizes.setdefault(entitlement["portrait_id"], set()).add(entitlement["size"])
    slug = _slug(gallery, 40)
    files = []
    for number, entry in enumerate(entries, start=1):
        if entry.portrait_id not in wanted:
            continue
        size = wanted[entry.portrait_id]
        allowed = sizes.get(entry.portrait_id, set())
        if Entitlement.Size.FULL not in allowed and not (size == Entitlement.Size.WEB and size in allowed):
            continue
        image = entry.portrait.image
        if not image or not image.name:
            continue
        web = size == Entitlement.Size.WEB
        name = f"{slug}-{number:03d}-{entry.portrait_id}{'-web.jpg' if web else '.png'}"
        files.append(ZipEntry(name=name, storage=image.storage, path=image.name, web=web))
    return files


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream zipfile writes into; the generator takes what was written so far."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


def web_jpeg(data: bytes) -> bytes:
    """The 2048 px web JPEG of a full-resolution image (never upscaled, no metadata)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return encode_clean(image, format="JPEG", quality=90, max_side=WEB_SIDE)


def stream_zip(files: Sequence[ZipEntry], *, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """The ZIP of these files, produced as it is sent (stored, not deflated: PNG and JPEG are compressed already).
    Runs after the request's transaction: it reads storage only, never the database."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for item in files:
            try:
                handle = item.storage.open(item.path, "rb")
            except (FileNotFoundError, OSError):
                log.warning("gallery_zip_file_missing", path=item.path)
                continue
            with handle:
                reader: Callable[[], bytes]
                if item.web:
                    data = io.BytesIO(web_jpeg(handle.read()))
                    reader = lambda data=data: data.read(chunk_size)  # noqa: E731
                else:
                    reader = lambda handle=handle: handle.read(chunk_size)  # noqa: E731
                info = zipfile.ZipInfo(item.name, date_time=timezone.localtime().timetuple()[:6])
                info.compress_type = zipfile.ZIP_STORED
                with archive.open(info, mode="w", force_zip64=True) as dest:
                    while chunk := reader():
                        dest.write(chunk)
                        if written := sink.take():
                            yield written
            if written := sink.take():
                yield written
    if written := sink.take():
        yield written


def _slug(gallery: Gallery, length: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (gallery.title or "portraits").lower()).strip("-")[:length] or "portraits"


def zip_name(gallery: Gallery) -> str:
    return f"{_slug(gallery, 60)}.zip"


def cover_url(*, gallery: Gallery, studio: Any) -> str:
    """The picture at the top of the client's gallery: the gallery's cover portrait (its watermarked preview,
    signed for this gallery; one query), else the studio's gallery cover (public branding), else ""."""
    from django.urls import reverse

    if gallery.cover_portrait_id is not None:
        portrait = Portrait.objects.filter(pk=gallery.cover_portrait_id).only("id", "preview").first()
        if portrait is not None and portrait.preview:
            return signed_media_url(obj=portrait, field="preview", gallery=gallery, max_age=preview_link_seconds())
    if studio is not None and studio.gallery_cover:
        # The file's name changes with each upload: a new cover is a new address (the old one stays cached).
        return f"{reverse('studio_gallery_cover')}?v={studio.gallery_cover.name.rsplit('/', 1)[-1]}"
    return ""
