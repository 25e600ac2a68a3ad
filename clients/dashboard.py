"""The clients' part of the studio dashboard (tenants.dashboard), registered from ClientsConfig.ready(): photo sets
waiting for the client's photos ("Needs you now"), clients added and photos uploaded and checked ("Recent
activity"). Sets ready for the studio's review are generation's (it knows which ones a double was started from)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clients import selectors
from clients.models import PhotoSet
from clients.views import CLIENT_MANAGING_ROLES
from jobs.models import Job
from tenants.access import has_role
from tenants.dashboard import (
    ActionItem,
    Activity,
    NamedObject,
    age,
    count_and_oldest,
    register_action_items,
    register_activity,
)

NAMED = 3  # the oldest objects an item names


def photo_set_url(photo_set: PhotoSet) -> str:
    return reverse("photoset_detail", kwargs={"client_id": photo_set.client_id, "photoset_id": photo_set.pk})


def waiting_for_photos(request: HttpRequest) -> list[ActionItem]:
    """Open sets with too few accepted photos and none being checked: a reminder to send the client (the set's page
    makes an upload link and emails it). One query."""
    count, oldest = count_and_oldest(selectors.sets_waiting_for_photos(), order_by=("created_at", "id"), limit=NAMED)
    if not count:
        return []
    minimum = settings.INTAKE_MIN_PHOTOS
    objects = tuple(
        NamedObject(
            label=s.client.name,
            url=photo_set_url(s),
            detail=_("%(accepted)s of %(minimum)s photos, waiting for %(age)s")
            % {"accepted": s.accepted_count, "minimum": minimum, "age": age(s.created_at)},
        )
        for s in oldest
    )
    longest = age(oldest[0].created_at)
    text = ngettext(
        "%(count)s photo set is waiting for the client's photos, for %(age)s.",
        "%(count)s photo sets are waiting for the client's photos, the oldest for %(age)s.",
        count,
    ) % {"count": count, "age": longest}
    note = "" if has_role(request, CLIENT_MANAGING_ROLES) else _("Owners, managers and staff can send an upload link.")
    return [
        ActionItem(
            key="clients.sets_waiting_for_photos",
            count=count,
            text=text,
            url=objects[0].url if count == 1 else reverse("clients"),
            action=_("Send an upload link") if count == 1 else _("Open the clients"),
            urgency=70,
            objects=objects,
            note=note,
        )
    ]


def _checked_text(name: str, result: object) -> str:
    if isinstance(result, dict):
        accepted, rejected = result.get("accepted"), result.get("rejected")
        if isinstance(accepted, int) and isinstance(rejected, int):
            return _("Photos of %(name)s checked: %(accepted)s accepted, %(rejected)s rejected") % {
                "name": name,
                "accepted": accepted,
                "rejected": rejected,
            }
    return _("Photos of %(name)s checked") % {"name": name}


def activity(request: HttpRequest, limit: int) -> list[Activity]:
    """Clients added; photos uploaded (a validation job queued) and checked (it succeeded). Two queries."""
    events = [
        Activity(
            at=client.created_at,
            text=_("%(name)s added as a client") % {"name": client.name},
            url=reverse("client_detail", kwargs={"client_id": client.pk}),
            label=_("Client"),
        )
        for client in selectors.recent_clients(limit=limit)
    ]
    for job in selectors.recent_validations(limit=limit):
        if job.client_ref is None:  # the set (or its client) is gone
            continue
        url = reverse("photoset_detail", kwargs={"client_id": job.client_ref, "photoset_id": job.photo_set_ref})
        text = _("New photos for %(name)s") % {"name": job.client_name}
        events.append(Activity(at=job.created_at, text=text, url=url, label=_("Photos")))
        checked = (job.result or {}).get("checked") if isinstance(job.result, dict) else None
        if job.state == Job.State.SUCCEEDED and job.finished_at is not None and checked != 0:
            text = _checked_text(job.client_name, job.result)
            events.append(Activity(at=job.finished_at, text=text, url=url, label=_("Photos")))
    return events


def register_dashboard() -> None:
    register_action_items("clients", waiting_for_photos)
    register_activity("clients", activity)
