"""Generation's part of the dashboard (generation/dashboard.py): photo sets ready for review and training, digital
doubles that failed, doubles trained and runs finished."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client, Photo, PhotoSet
from generation.models import DigitalDouble, RenderRun, RenderRunItem
from jobs.models import Job
from tenants.context import tenant_context
from tests.tenants.dashboard_data import MIN_PHOTOS, action_items, activity, dashboard_page

pytestmark = pytest.mark.django_db

READY = "generation.sets_ready_for_review"
FAILED = "generation.doubles_failed"


@pytest.fixture(autouse=True)
def two_photos_train(settings):  # noqa: ANN001, ANN201
    settings.INTAKE_MIN_PHOTOS = MIN_PHOTOS


def _ready_set(name: str = "Anna Martin") -> PhotoSet:
    client = Client.objects.create(name=name)
    photo_set = PhotoSet.objects.create(client=client, retention_until=timezone.now() + timedelta(days=30))
    Photo.objects.bulk_create([Photo(photo_set=photo_set, status=Photo.Status.ACCEPTED) for _ in range(MIN_PHOTOS)])
    return photo_set


def _double(client: Client, status: str, *, photo_set: PhotoSet | None = None, job: Job | None = None) -> DigitalDouble:
    return DigitalDouble.objects.create(
        client=client,
        photo_set=photo_set,
        base_model="tiny-sd15",
        family="sd15",
        trigger="ohwx",
        status=status,
        job=job,
    )


def _failed_job() -> Job:
    return Job.objects.create(kind="double.train", state=Job.State.FAILED, finished_at=timezone.now())


def test_a_set_that_can_train_waits_for_the_studio(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        photo_set = _ready_set()
    item = action_items(dashboard_page(client_a, tenant_a))[READY]
    url = f"{tenant_a.prefix}/clients/{photo_set.client_id}/"
    assert "1 photo set is ready for your review: check the photos, then train the digital double." in item
    assert f'<a href="{url}">Anna Martin</a> <span class="muted">· 2 photos accepted' in item
    assert f'href="{url}">Review and train</a>' in item


@pytest.mark.parametrize(
    "status", [DigitalDouble.Status.QUEUED, DigitalDouble.Status.READY, DigitalDouble.Status.FAILED]
)
def test_a_set_a_double_was_started_from_is_not_waiting(client_a, tenant_a, status) -> None:
    with tenant_context(tenant_a.studio):
        photo_set = _ready_set()
        _double(photo_set.client, status, photo_set=photo_set)
    assert READY not in action_items(dashboard_page(client_a, tenant_a))


def test_a_double_whose_training_failed_needs_the_studio(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        client = Client.objects.create(name="Anna Martin")
        double = _double(client, DigitalDouble.Status.FAILED, job=_failed_job())
    item = action_items(dashboard_page(client_a, tenant_a))[FAILED]
    url = f"{tenant_a.prefix}/doubles/{double.pk}/"
    assert "1 digital double failed to train: see why, then train it again or ask for new photos." in item
    assert f'<a href="{url}">Anna Martin</a>' in item
    assert f'href="{url}">See what failed</a>' in item
    assert 'class="action-count is-urgent"' in item


def test_a_double_whose_job_failed_before_the_worker_marked_it_is_failed(client_a, tenant_a) -> None:
    """A training whose worker died: the sweeper failed the job, the double still says "training"."""
    with tenant_context(tenant_a.studio):
        _double(Client.objects.create(name="Anna Martin"), DigitalDouble.Status.TRAINING, job=_failed_job())
    assert FAILED in action_items(dashboard_page(client_a, tenant_a))


def test_a_failed_double_replaced_or_cancelled_is_not_listed(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        replaced = Client.objects.create(name="Replaced")
        _double(replaced, DigitalDouble.Status.FAILED, job=_failed_job())
        _double(replaced, DigitalDouble.Status.READY)  # trained again since
        cancelled = Job.objects.create(kind="double.train", state=Job.State.CANCELLED)
        _double(Client.objects.create(name="Cancelled"), DigitalDouble.Status.FAILED, job=cancelled)
    assert FAILED not in action_items(dashboard_page(client_a, tenant_a))


def test_doubles_trained_and_runs_finished_are_recent_activity(client_a, tenant_a) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.studio):
        client = Client.objects.create(name="Anna Martin")
        double = _double(client, DigitalDouble.Status.READY)
        DigitalDouble.objects.filter(pk=double.pk).update(trained_at=now - timedelta(hours=2))
        run = RenderRun.objects.create(double=double, images=2)
        done = Job.objects.create(
            kind="portraits.render", state=Job.State.SUCCEEDED, finished_at=now + timedelta(minutes=1)
        )
        RenderRunItem.objects.create(run=run, images=2, job=done)
        running = RenderRun.objects.create(double=double, images=2)
        RenderRunItem.objects.create(run=running, images=2, job=Job.objects.create(kind="portraits.render"))
    entries = activity(dashboard_page(client_a, tenant_a))
    assert f'<a href="{tenant_a.prefix}/runs/{run.pk}/">Portraits of Anna Martin are ready</a>' in entries[0]
    assert "Anna Martin added as a client" in entries[1]
    assert f'<a href="{tenant_a.prefix}/doubles/{double.pk}/">Digital double of Anna Martin is ready</a>' in entries[2]
    assert not any(f"/runs/{running.pk}/" in entry for entry in entries)  # still running
