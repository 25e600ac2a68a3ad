"""The galleries' part of the studio dashboard (tenants.dashboard), registered from GalleriesConfig.ready(): runs
finished whose picks are in no gallery yet, favorites not bought, galleries shared and never opened ("Needs you
now"); galleries shared and opened ("Recent activity")."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from galleries import selectors
from galleries.views import GALLERY_ROLES
from generation.dashboard import run_subject
from tenants.access import has_role
from tenants.dashboard import (
    ActionItem,
    Activity,
    NamedObject,
    age,
    count_and_oldest,
    counted,
    oldest_first,
    register_action_items,
    register_activity,
)

NAMED = 3
GALLERY_NOTE = "Owners, managers and staff can make and send galleries."


def gallery_url(gallery_id: int) -> str:
    return reverse("gallery_detail", kwargs={"gallery_id": gallery_id})


def needs(request: HttpRequest) -> list[ActionItem]:
    """Runs to turn into galleries (urgency 30), favorites not bought (50), galleries never opened (60). Four
    queries."""
    now = timezone.now()
    can_act = has_role(request, GALLERY_ROLES)
    note = "" if can_act else GALLERY_NOTE
    items = []

    runs = selectors.runs_without_gallery(now=now)
    count, oldest = count_and_oldest(runs, order_by=("created_at", "id"), limit=NAMED)
    if count:
        page = "gallery_from_run" if can_act else "run_detail"
        objects = tuple(
            NamedObject(
                label=run_subject(run),
                url=reverse(page, kwargs={"renderrun_id": run.pk}),
                detail=f"run started {age(run.created_at, now)} ago",
            )
            for run in oldest
        )
        verb = "has" if count == 1 else "have"
        items.append(
            oldest_first(
                key="galleries.runs_without_gallery",
                count=count,
                text=f"{counted(count, 'run')} {verb} finished and {'its' if count == 1 else 'their'} picks are in "
                f"no gallery yet.",
                action_for_one="Make the gallery" if can_act else "See the run",
                urgency=30,
                objects=objects,
                note=note,
            )
        )

    totals = selectors.unbought_favorite_counts(now=now)
    if totals["favorites"]:
        rows = selectors.galleries_with_unbought_favorites(now=now, limit=NAMED)
        objects = tuple(
            NamedObject(
                label=f"{row['gallery__client__name']}: {row['gallery__title']}",
                url=gallery_url(row["gallery_id"]),
                detail=counted(row["favorites"], "favorite"),
            )
            for row in rows
        )
        galleries = totals["galleries"]
        verb = "isn't" if totals["favorites"] == 1 else "aren't"
        items.append(
            oldest_first(
                key="galleries.favorites_not_bought",
                count=totals["favorites"],
                text=f"{counted(totals['favorites'], 'favorite')} in {counted(galleries, 'gallery', 'galleries')} "
                f"{verb} bought yet.",
                fallback_url=reverse("gallery_list"),
                action_for_one="Open the gallery",
                urgency=50,
                objects=objects,
                note=note,
                of=galleries,  # the named objects are galleries: "and N more" counts galleries
            )
        )

    count, oldest = count_and_oldest(
        selectors.galleries_never_opened(now=now), order_by=("shared_at", "id"), limit=NAMED
    )
    if count:
        objects = tuple(
            NamedObject(
                label=f"{g.client.name}: {g.title}", url=gallery_url(g.pk), detail=f"shared {age(g.shared_at, now)} ago"
            )
            for g in oldest
        )
        verb = "was" if count == 1 else "were"
        items.append(
            oldest_first(
                key="galleries.never_opened",
                count=count,
                text=f"{counted(count, 'gallery', 'galleries')} {verb} shared but never opened.",
                action_for_one="Remind the client",
                urgency=60,
                objects=objects,
                note=note,
            )
        )
    return items


def activity(request: HttpRequest, limit: int) -> list[Activity]:
    """Galleries shared and opened. Two queries."""
    events = [
        Activity(
            at=g.shared_at,
            text=f"Gallery “{g.title}” sent to {g.client.name}",
            url=gallery_url(g.pk),
            label="Gallery",
        )
        for g in selectors.recent_shares(limit=limit)
    ]
    for event in selectors.recent_views(limit=limit):
        gallery = event.gallery
        events.append(
            Activity(
                at=event.created_at,
                text=f"{gallery.client.name} opened the gallery “{gallery.title}”",
                url=gallery_url(gallery.pk),
                label="Gallery",
            )
        )
    return events


def register_dashboard() -> None:
    register_action_items("galleries", needs)
    register_activity("galleries", activity)
