"""Generation's part of the studio dashboard (tenants.dashboard), registered from GenerationConfig.ready(): photo
sets ready for the studio's review and training, and digital doubles whose training failed ("Needs you now");
doubles trained and runs finished ("Recent activity"). Runs not yet in a gallery are galleries' (it knows the
galleries)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from generation import selectors
from generation.models import RenderRun
from generation.views.doubles import DOUBLE_MANAGING_ROLES
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
TRAIN_NOTE = gettext_lazy("Owners, managers and staff can train digital doubles.")


def run_subject(run: RenderRun) -> str:
    """Whom a run portrays: its group's name, or its client's."""
    if run.group_id:
        return run.group.name if run.group is not None else _("a deleted group")
    return run.double.client.name


def needs(request: HttpRequest) -> list[ActionItem]:
    """Sets ready to train (urgency 40) and failed doubles (20). One query each."""
    items = []
    note = "" if has_role(request, DOUBLE_MANAGING_ROLES) else str(TRAIN_NOTE)
    count, oldest = count_and_oldest(selectors.sets_ready_for_review(), order_by=("created_at", "id"), limit=NAMED)
    if count:
        objects = tuple(
            NamedObject(
                label=s.client.name,
                url=reverse("client_detail", kwargs={"client_id": s.client_id}),
                detail=ngettext(
                    "%(count)s photo accepted, set started %(age)s ago",
                    "%(count)s photos accepted, set started %(age)s ago",
                    s.accepted_count,
                )
                % {"count": s.accepted_count, "age": age(s.created_at)},
            )
            for s in oldest
        )
        items.append(
            oldest_first(
                key="generation.sets_ready_for_review",
                count=count,
                text=ngettext(
                    "%(count)s photo set is ready for your review: check the photos, then train the digital double.",
                    "%(count)s photo sets are ready for your review: check the photos, then train the digital double.",
                    count,
                )
                % {"count": count},
                action_for_one=_("Review and train"),
                urgency=40,
                objects=objects,
                note=note,
            )
        )
    count, oldest = count_and_oldest(selectors.failed_doubles(), order_by=("created_at", "id"), limit=NAMED)
    if count:
        objects = tuple(
            NamedObject(
                label=d.client.name,
                url=reverse("double_detail", kwargs={"digitaldouble_id": d.pk}),
                detail=_("failed %(age)s ago")
                % {"age": age(d.job.finished_at if d.job and d.job.finished_at else d.created_at)},
            )
            for d in oldest
        )
        items.append(
            oldest_first(
                key="generation.doubles_failed",
                count=count,
                text=ngettext(
                    "%(count)s digital double failed to train: see why, then train it again or ask for new photos.",
                    "%(count)s digital doubles failed to train: see why, then train them again or ask for new photos.",
                    count,
                )
                % {"count": count},
                action_for_one=_("See what failed"),
                urgency=20,
                objects=objects,
                note=note,
            )
        )
    return items


def activity(request: HttpRequest, limit: int) -> list[Activity]:
    """Doubles trained and client runs finished. Two queries."""
    events = [
        Activity(
            at=double.trained_at,
            text=_("Digital double of %(name)s is ready") % {"name": double.client.name},
            url=reverse("double_detail", kwargs={"digitaldouble_id": double.pk}),
            label=_("Double"),
        )
        for double in selectors.recent_ready_doubles(limit=limit)
    ]
    for run in selectors.recent_finished_runs(limit=limit):
        events.append(
            Activity(
                at=run.finished_at or run.created_at,
                text=_("Portraits of %(name)s are ready") % {"name": run_subject(run)},
                url=reverse("run_detail", kwargs={"renderrun_id": run.pk}),
                label=_("Run"),
            )
        )
    return events


def register_dashboard() -> None:
    register_action_items("generation", needs)
    register_activity("generation", activity)
