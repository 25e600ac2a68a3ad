"""The studio's gallery reads: the list with counts, a gallery with its portraits, the portraits that may still
be added, entitlements, and the statistics of views, favorites and downloads over time.

Keyword-only, typed, run in the current tenant context; each a fixed number of queries whatever the number of
galleries, portraits or events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy

from clients.models import Client
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait
from galleries.paging import PageNumbers
from generation.models import Portrait, RenderRun
from generation.selectors import finished_runs

STATUS_DRAFT = "draft"
STATUS_SHARED = "shared"
STATUS_EXPIRED = "expired"
STATUS_REVOKED = "revoked"
STATUS_LABELS = {
    STATUS_DRAFT: gettext_lazy("Draft"),
    STATUS_SHARED: gettext_lazy("Shared"),
    STATUS_EXPIRED: gettext_lazy("Expired"),
    STATUS_REVOKED: gettext_lazy("Revoked"),
}
# The job-state badge colours the studio pages already use.
STATUS_BADGES = {
    STATUS_DRAFT: "queued",
    STATUS_SHARED: "succeeded",
    STATUS_EXPIRED: "cancelled",
    STATUS_REVOKED: "failed",
}
STATS_DAYS = 30
CANDIDATES_LIMIT = 300


def gallery_status(gallery: Gallery, *, now: datetime | None = None) -> str:
    """revoked (the link is switched off) > expired (past its date) > shared (the email went out) > draft."""
    now = now or timezone.now()
    if gallery.revoked_at is not None:
        return STATUS_REVOKED
    if gallery.expires_at is not None and gallery.expires_at <= now:
        return STATUS_EXPIRED
    if gallery.shared_at is not None:
        return STATUS_SHARED
    return STATUS_DRAFT


def with_status(gallery: Gallery, *, now: datetime | None = None) -> Gallery:
    """Set `status`, `status_label` and `status_badge` on the gallery (for templates and serializers)."""
    status = gallery_status(gallery, now=now)
    gallery.status = status  # type: ignore[attr-defined]
    gallery.status_label = STATUS_LABELS[status]  # type: ignore[attr-defined]
    gallery.status_badge = STATUS_BADGES[status]  # type: ignore[attr-defined]
    return gallery


def gallery_list(*, client: Client | None = None, group: Any = None) -> QuerySet[Gallery]:
    """The studio's galleries (a client's, or a group's), newest first, with their client, `portrait_count` and
    `favorite_count`: one query for the rows whatever their number."""
    qs = (
        Gallery.objects.select_related("client", "secret_unlocked_by")
        .annotate(
            portrait_count=Count("entries", distinct=True),
            favorite_count=Count("entries", filter=Q(entries__is_favorite=True), distinct=True),
        )
        .order_by("-created_at", "-id")
    )
    if group is not None:
        qs = qs.filter(group=group)
    return qs.filter(client=client) if client is not None else qs


def get_gallery(*, gallery_id: Any) -> Gallery:
    """The studio's gallery with its client, run and author, or Http404."""
    return get_object_or_404(
        Gallery.objects.select_related("client", "group", "run", "created_by", "secret_unlocked_by"), pk=gallery_id
    )


ENTRY_PAGE_SIZE = 48


@dataclass(frozen=True)
class EntryPage(PageNumbers):
    """One page of a gallery's portraits (studio side and API): `number` is 1-based; `total` and `favorites`
    count the whole gallery."""

    favorites: int
    entries: list[GalleryPortrait]


def gallery_entries_page(*, gallery: Gallery, number: int = 1, size: int = ENTRY_PAGE_SIZE) -> EntryPage:
    """Page `number` of the gallery's portraits in order (past the last page: the last page), each with its
    portrait, and the gallery's counts: three queries (one aggregate, one page of entries, their portraits)
    whatever its size."""
    qs = GalleryPortrait.objects.filter(gallery=gallery)
    row = qs.aggregate(total=Count("id"), favorites=Count("id", filter=Q(is_favorite=True)))
    total = row["total"] or 0
    number = max(1, min(number, max(1, -(-total // size))))
    offset = (number - 1) * size
    # The portraits come in a second query by primary key (prefetch): joined, the planner (its estimates thrown
    # off by row-level security's filter) could scan the portraits for each entry.
    entries = list(qs.prefetch_related("portrait").order_by("position", "id")[offset : offset + size])
    for entry in entries:
        entry.gallery = gallery
    return EntryPage(number=number, size=size, total=total, favorites=row["favorites"] or 0, entries=entries)


def parse_page(value: Any) -> int:
    """A page number from a query string: 1 for anything that isn't a positive number."""
    if isinstance(value, str) and value.isdigit() and len(value) < 7:
        return max(1, int(value))
    return 1


def client_portraits(*, client: Client, exclude_gallery: Gallery | None = None) -> list[Portrait]:
    """The client's shown portraits that can go in a gallery (those of render runs, with a watermarked preview),
    picks first, newest run first; without those already in `exclude_gallery`. One query."""
    qs = Portrait.objects.filter(is_hidden=False).exclude(preview="")
    if exclude_gallery is not None and exclude_gallery.group_id is not None:
        qs = qs.filter(group_id=exclude_gallery.group_id)  # a group's gallery: the group's portraits
    else:
        qs = qs.filter(double__client=client, group__isnull=True)
    if exclude_gallery is not None:
        qs = qs.exclude(pk__in=GalleryPortrait.objects.filter(gallery=exclude_gallery).values("portrait_id"))
    return list(qs.select_related("run").order_by("-is_pick", "-run__created_at", "rank", "-pk")[:CANDIDATES_LIMIT])


def client_runs(*, client: Client) -> list[RenderRun]:
    """The client's render runs, newest first (for the new-gallery page)."""
    return list(
        RenderRun.objects.filter(double__client=client, group__isnull=True, kind=RenderRun.Kind.CLIENT).order_by(
            "-created_at"
        )
    )


ENTITLEMENTS_SHOWN = 50


def recent_entitlements(*, gallery: Gallery, limit: int = ENTITLEMENTS_SHOWN) -> tuple[list[Entitlement], int]:
    """The gallery's `limit` newest entitlements (active and revoked) and how many it has in all: two queries
    whatever their number (the API lists them all, a page at a time)."""
    qs = Entitlement.objects.filter(gallery=gallery)
    return list(qs.select_related("granted_by").order_by("-granted_at", "-id")[:limit]), qs.count()


def active_entitlements_of(*, gallery: Gallery, portrait_ids: list[int]) -> dict[int, list[Entitlement]]:
    """The active entitlements of these portraits of the gallery, by portrait id (one query)."""
    by_portrait: dict[int, list[Entitlement]] = {}
    qs = Entitlement.objects.filter(gallery=gallery, portrait_id__in=portrait_ids, revoked_at__isnull=True)
    for entitlement in qs.order_by("-granted_at", "-id"):
        by_portrait.setdefault(entitlement.portrait_id, []).append(entitlement)
    return by_portrait


def get_entitlement(*, gallery: Gallery, entitlement_id: Any) -> Entitlement:
    return get_object_or_404(Entitlement, pk=entitlement_id, gallery=gallery)


def get_entry(*, gallery: Gallery, portrait_id: Any) -> GalleryPortrait:
    """The gallery's entry of this portrait, or Http404 (another studio's portrait included)."""
    return get_object_or_404(
        GalleryPortrait.objects.select_related("portrait"), gallery=gallery, portrait_id=portrait_id
    )


# --- Statistics -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    views: int = 0
    favorites: int = 0
    downloads: int = 0

    @property
    def total(self) -> int:
        return self.views + self.favorites + self.downloads


@dataclass(frozen=True)
class Stats:
    """A gallery's statistics: one row per day of the last `days` days (oldest first, days without events
    included), and totals since the gallery was made."""

    days: list[Day]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def peak(self) -> int:
        return max((max(d.views, d.favorites, d.downloads) for d in self.days), default=0)

    @property
    def window(self) -> dict[str, int]:
        """Totals over the days shown."""
        return {
            "views": sum(d.views for d in self.days),
            "favorites": sum(d.favorites for d in self.days),
            "downloads": sum(d.downloads for d in self.days),
        }


_COUNTED = {
    "views": Q(kind=GalleryEvent.Kind.VIEW),
    "unlocks": Q(kind=GalleryEvent.Kind.UNLOCK),
    "favorites": Q(kind=GalleryEvent.Kind.FAVORITE),
    "unfavorites": Q(kind=GalleryEvent.Kind.UNFAVORITE),
    "downloads": Q(kind__in=[GalleryEvent.Kind.DOWNLOAD, GalleryEvent.Kind.ZIP]),
    "more_like_me": Q(kind=GalleryEvent.Kind.MORE_LIKE_ME),
    "emails": Q(kind=GalleryEvent.Kind.EMAIL),
}


def gallery_stats(*, gallery: Gallery, days: int = STATS_DAYS, now: datetime | None = None) -> Stats:
    """Views, favorites and downloads (single files and ZIPs) per day over the last `days` days in the current
    time zone, and totals of every kind of event since the gallery was made: one aggregate query (events grouped
    by day, a conditional count per kind)."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    rows = (
        GalleryEvent.objects.filter(gallery=gallery)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(**{name: Count("id", filter=condition) for name, condition in _COUNTED.items()})
        .order_by("day")
    )
    today = timezone.localtime(now, tz).date()
    first = today - timedelta(days=days - 1)
    by_day: dict[date, dict[str, int]] = {}
    totals = dict.fromkeys(_COUNTED, 0)
    for row in rows:
        for name in _COUNTED:
            totals[name] += row[name]
        if row["day"] is not None and first <= row["day"] <= today:
            by_day[row["day"]] = row
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        series.append(
            Day(day, row["views"], row["favorites"], row["downloads"]) if row else Day(day)  # type: ignore[index]
        )
    return Stats(days=series, totals=totals)


# --- The dashboard's reads (galleries/dashboard.py) -------------------------------------------------------------

#: A gallery shared this long ago and not opened since needs a word to the client (sooner is only the mail's delay).
UNOPENED_AFTER = timedelta(days=1)
#: How far back the dashboard looks for runs not yet in a gallery: runs, unlike open sets or galleries, have no end
#: of life, and an older one left without a gallery was left on purpose (its page still offers one).
RUNS_LOOKBACK = timedelta(days=90)


def open_galleries(*, now: datetime) -> QuerySet[Gallery]:
    """Galleries whose link works: not revoked, not expired."""
    return Gallery.objects.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def runs_without_gallery(*, now: datetime | None = None) -> QuerySet[RenderRun]:
    """Finished client runs of the last RUNS_LOOKBACK (the index renderrun_studio_created) with visible picks, none
    of whose portraits is in a gallery, and no gallery made from them: each portrait and gallery looked up by its
    index (portrait_studio_run, the run's galleries)."""
    now = now or timezone.now()
    picks = Portrait.objects.filter(run=OuterRef("pk"), is_pick=True, is_hidden=False)
    shown = GalleryPortrait.objects.filter(portrait__run=OuterRef("pk"))
    return (
        finished_runs()
        .filter(created_at__gte=now - RUNS_LOOKBACK)
        .filter(Exists(picks))
        .exclude(Exists(Gallery.objects.filter(run=OuterRef("pk"))))
        .exclude(Exists(shown))
    )


def galleries_never_opened(*, now: datetime | None = None) -> QuerySet[Gallery]:
    """Open galleries shared more than UNOPENED_AFTER ago with no view since they were shared (a view is recorded
    once per browser session and day: galleries.client_services.record_view), with their client."""
    now = now or timezone.now()
    viewed = GalleryEvent.objects.filter(
        gallery=OuterRef("pk"), kind=GalleryEvent.Kind.VIEW, created_at__gte=OuterRef("shared_at")
    )
    return (
        open_galleries(now=now)
        .filter(shared_at__lte=now - UNOPENED_AFTER)
        .exclude(Exists(viewed))
        .select_related("client")
        .only("id", "title", "shared_at", "client__name")
    )


def unbought_favorites(*, now: datetime | None = None) -> QuerySet[GalleryPortrait]:
    """Portraits the client favorited in an open gallery and holds no active entitlement for (at any size)."""
    now = now or timezone.now()
    bought = Entitlement.objects.filter(
        gallery=OuterRef("gallery"), portrait=OuterRef("portrait"), revoked_at__isnull=True
    )
    return GalleryPortrait.objects.filter(is_favorite=True, gallery__in=open_galleries(now=now).values("pk")).exclude(
        Exists(bought)
    )


def unbought_favorite_counts(*, now: datetime | None = None) -> dict[str, int]:
    """How many favorites are not bought, in how many galleries (one query)."""
    totals = unbought_favorites(now=now).aggregate(favorites=Count("pk"), galleries=Count("gallery", distinct=True))
    return {"favorites": totals["favorites"] or 0, "galleries": totals["galleries"] or 0}


def galleries_with_unbought_favorites(*, now: datetime | None = None, limit: int = 3) -> list[dict[str, Any]]:
    """The `limit` galleries whose unbought favorites are the oldest: gallery_id, title, client name, `favorites`
    (how many) and `since` (the first one's time). One query."""
    rows = (
        unbought_favorites(now=now)
        .order_by()
        .values("gallery_id", "gallery__title", "gallery__client__name")
        .annotate(favorites=Count("pk"), since=Min("favorited_at"))
        .order_by("since", "gallery_id")[:limit]
    )
    return list(rows)


def recent_shares(*, limit: int) -> list[Gallery]:
    """The galleries shared last, with their client, newest first."""
    return list(
        Gallery.objects.filter(shared_at__isnull=False)
        .select_related("client")
        .only("id", "title", "shared_at", "client__name")
        .order_by("-shared_at", "-id")[:limit]
    )


def recent_views(*, limit: int) -> list[GalleryEvent]:
    """The latest gallery views, one per gallery (its newest), at most `limit`: one query of `limit` × 3 events
    (a gallery opened again and again leaves room for others)."""
    events = (
        GalleryEvent.objects.filter(kind=GalleryEvent.Kind.VIEW)
        .select_related("gallery__client")
        .only("id", "created_at", "gallery__title", "gallery__client__name")
        .order_by("-created_at", "-id")[: limit * 3]
    )
    seen: set[int] = set()
    out = []
    for event in events:
        if event.gallery_id not in seen:
            seen.add(event.gallery_id)
            out.append(event)
    return out[:limit]
