"""The clients' part of the dashboard (clients/dashboard.py): photo sets waiting for the client's photos, clients
added and photos uploaded and checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client, Photo, PhotoSet
from clients.services import VALIDATE_SET_KIND
from jobs.models import Job
from tenants.context import tenant_context
from tests.tenants.dashboard_data import MIN_PHOTOS, action_items, activity, dashboard_page

pytestmark = pytest.mark.django_db

WAITING = "clients.sets_waiting_for_photos"


@pytest.fixture(autouse=True)
def two_photos_train(settings):  # noqa: ANN001, ANN201
    settings.INTAKE_MIN_PHOTOS = MIN_PHOTOS


def _set(name: str, *photos: str, **client_fields: object) -> PhotoSet:
    client = Client.objects.create(name=name, **client_fields)
    photo_set = PhotoSet.objects.create(client=client, retention_until=timezone.now() + timedelta(days=30))
    for status in photos:
        Photo.objects.create(photo_set=photo_set, status=status)
    return photo_set


def test_a_set_without_enough_photos_waits_for_the_client(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        photo_set = _set("Anna Martin", Photo.Status.ACCEPTED, Photo.Status.REJECTED)
        PhotoSet.objects.filter(pk=photo_set.pk).update(created_at=timezone.now() - timedelta(days=12))
    item = action_items(dashboard_page(client_a, tenant_a))[WAITING]
    url = f"{tenant_a.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/"
    assert "1 photo set is waiting for the client&#x27;s photos, for 1\xa0week." in item
    assert f'<a href="{url}">Anna Martin</a>' in item
    assert "1 of 2 photos, waiting for 1\xa0week" in item
    assert f'<a class="btn btn-small action-link" href="{url}">Send an upload link</a>' in item


def test_several_waiting_sets_link_to_the_clients(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        _set("Anna Martin")
        _set("Marc Dupont", Photo.Status.ACCEPTED)
    item = action_items(dashboard_page(client_a, tenant_a))[WAITING]
    assert "2 photo sets are waiting for the client&#x27;s photos, the oldest for" in item
    assert f'href="{tenant_a.prefix}/clients/">Open the clients</a>' in item


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _set("Checking", Photo.Status.PENDING), id="a photo is being checked"),
        pytest.param(lambda: _set("Ready", Photo.Status.ACCEPTED, Photo.Status.ACCEPTED), id="enough photos"),
        pytest.param(lambda: _set("Archived", status=Client.Status.ARCHIVED), id="an archived client"),
        pytest.param(
            lambda: PhotoSet.objects.filter(pk=_set("Trained").pk).update(status=PhotoSet.Status.TRAINED),
            id="a trained set",
        ),
    ],
)
def test_a_set_that_does_not_wait_for_photos_is_not_listed(client_a, tenant_a, make) -> None:
    with tenant_context(tenant_a.studio):
        make()
    assert WAITING not in action_items(dashboard_page(client_a, tenant_a))


def test_clients_added_and_photos_uploaded_and_checked_are_recent_activity(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        photo_set = _set("Anna Martin")
        Job.objects.create(
            kind=VALIDATE_SET_KIND,
            payload={"photo_set_id": photo_set.pk},
            state=Job.State.SUCCEEDED,
            result={"checked": 3, "accepted": 2, "rejected": 1},
            finished_at=timezone.now() + timedelta(seconds=5),
        )
    entries = activity(dashboard_page(client_a, tenant_a))
    set_url = f"{tenant_a.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/"
    assert f'<a href="{set_url}">Photos of Anna Martin checked: 2 accepted, 1 rejected</a>' in entries[0]
    assert f'<a href="{set_url}">New photos for Anna Martin</a>' in entries[1]
    assert f'<a href="{tenant_a.prefix}/clients/{photo_set.client_id}/">Anna Martin added as a client</a>' in entries[2]


def test_a_check_of_a_set_that_is_gone_is_left_out(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        Job.objects.create(kind=VALIDATE_SET_KIND, payload={"photo_set_id": 999999}, state=Job.State.SUCCEEDED)
    assert activity(dashboard_page(client_a, tenant_a)) == []
