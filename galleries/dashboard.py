"""The galleries' part of the studio dashboard (tenants.dashboard), registered from GalleriesConfig.ready(): runs
finished whose picks are in no gallery yet, favorites not bought, galleries shared and never opened ("Needs you
now"); galleries shared and opened ("Recent activity")."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

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
    oldest_first,
    register_action_items,
    register_activity,
)

NAMED = 3
GALLERY_NOTE = gettext_lazy("Owners, managers and staff can make and send galleries.")


def gallery_url(gallery_id: int) -> str:
    return reverse("gallery_detail", kwargs={"gallery_id": gallery_id})


def needs(request: HttpRequest) -> list[ActionItem]:
    """Runs to turn into galleries (urgency 30), favorites not bought (50), galleries never opened (60). Four
    queries."""
    now = timezone.now()
    can_act = has_role(request, GALLERY_ROLES)
    note = "" if can_act else str(GALLERY_NOTE)
    items = []

    runs = selectors.runs_without_gallery(now=now)
    count, oldest = count_and_oldest(runs, order_by=("created_at", "id"), limit=NAMED)
    if count:
        page = "gallery_from_run" if can_act else "run_detail"
        objects = tuple(
            NamedObject(
                label=run_subject(run),
                url=reverse(page, kwargs={"renderrun_id": run.pk}),
                detail=_("run started %(age)s ago") % {"age": age(run.created_at, now)},
            )
            for run in oldest
        )
        items.append(
            oldest_first(
                key="galleries.runs_without_gallery",
                count=count,
                text=ngettext(
                    "%(count)s run has finished and its picks are in no gallery yet.",
                    "%(count)s runs have finished and their picks are in no gallery yet.",
                    count,
                )
                % {"count": count},
                action_for_one=_("Make the gallery") if can_act else _("See the run"),
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
                detail=ngettext("%(count)s favorite", "%(count)s favorites", row["favorites"])
                % {"count": row["favorites"]},
            )
            for row in rows
        )
        galleries = totals["galleries"]
        items.append(
            oldest_first(
                key="galleries.favorites_not_bought",
                count=totals["favorites"],
                text=ngettext(
                    "%(count)s favorite in %(galleries)s isn't bought yet.",
                    "%(count)s favorites in %(galleries)s aren't bought yet.",
                    totals["favorites"],
                )
                % {
                    "count": totals["favorites"],
                    "galleries": ngettext("%(count)s gallery", "%(count)s galleries", galleries) % {"count": galleries},
                },
                fallback_url=reverse("gallery_list"),
                action_for_one=_("Open the gallery"),
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
                label=f"{g.client.name}: {g.title}",
                url=gallery_url(g.pk),
                detail=_("shared %(age)s ago") % {"age": age(g.shared_at, now)},
            )
            for g in oldest
        )
        items.append(
            oldest_first(
                key="galleries.never_opened",
                count=count,
                text=ngettext(
                    "%(count)s gallery was shared but never opened.",
                    "%(count)s galleries were shared but never opened.",
                    count,
                )
                % {"count": count},
                action_for_one=_("Remind the client"),
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
            text=_("Gallery “%(title)s” sent to %(name)s") % {"title": g.title, "name": g.client.name},
            url=gallery_url(g.pk),
            label=_("Gallery"),
        )
        for g in selectors.recent_shares(limit=limit)
    ]
    for event in selectors.recent_views(limit=limit):
        gallery = event.gallery
        events.append(
            Activity(
                at=event.created_at,
                text=_("%(name)s opened the gallery “%(title)s”")
                % {"name": gallery.client.name, "title": gallery.title},
                url=gallery_url(gallery.pk),
                label=_("Gallery"),
            )
        )
    return events


def register_dashboard() -> None:
    register_action_items("galleries", needs)
    register_activity("galleries", activity)
