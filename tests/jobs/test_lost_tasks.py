"""Lost tasks and shared brokers, with real django-q2 workers on a real Redis (issue 13, findings 2 and 3).

The tests are transactional, so what they write is committed and the workers (other processes, as the
application role, under row-level security) see it."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.tasks import sweep_stale_jobs
from tenants.context import tenant_context
from tests.jobs.worker_processes import kill_worker, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = Job.State


def _states(studio, ids: list[int]) -> list[str]:
    with tenant_context(studio):
        by_pk = dict(Job.objects.filter(pk__in=ids).values_list("pk", "state"))
    return [by_pk[pk] for pk in ids]


def _events(log_path: Path, event: str) -> list[dict]:
    """The worker's JSON log lines (LOG_JSON=1) of one event."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


def test_tasks_lost_with_a_killed_workers_prefetch_queue_are_sent_again(tenant_a, redis_broker, tmp_path, settings):
    """Issue 13, finding 2: a worker cluster killed with SIGKILL while tasks sat in its prefetch queue lost them
    (Redis had handed them over); the jobs stayed "Waiting for a worker" for good, because the sweeper only
    looked at running jobs. Now the sweeper sends the task of a queued job again when the broker no longer holds
    it, and a new worker runs every job to success."""
    studio = tenant_a.studio
    client = redis_broker.client()
    queue_key = redis_broker.key(redis_broker.prefix)
    log_path = tmp_path / "first.log"
    worker = start_worker(redis_broker, log_path, LOG_JSON="1")
    try:
        with tenant_context(studio):
            busy = services.enqueue_job(kind="demo.countdown", payload={"steps": 100, "delay": 1})
        wait_for(lambda: _states(studio, [busy.pk]) == [S.RUNNING], worker=worker, what="the long job to start")
        with tenant_context(studio):
            waiting = [services.enqueue_job(kind="demo.countdown", payload={"steps": 2, "delay": 0}) for _ in range(3)]
        ids = [job.pk for job in waiting]
        # The single worker process is busy: the cluster's pusher takes the three tasks into its prefetch queue.
        wait_for(lambda: client.llen(queue_key) == 0, worker=worker, what="the tasks to leave Redis")
        time.sleep(0.5)
        kill_worker(worker)
    finally:
        stop_worker(worker)
    assert _states(studio, ids) == [S.QUEUED] * 3
    assert client.llen(queue_key) == 0  # the three tasks are gone with the killed cluster

    settings.JOB_HEARTBEAT_STALE_SECONDS = 0
    settings.JOB_QUEUED_STALE_SECONDS = 0
    time.sleep(0.1)
    swept = sweep_stale_jobs()
    assert swept == {"requeued": 1, "failed": 0, "resent": 3}, swept
    assert client.llen(queue_key) == 4  # the busy job's task (requeued) and the three lost ones
    assert sweep_stale_jobs()["resent"] == 0  # their tasks are in the broker now: nothing is sent twice

    with tenant_context(studio):  # the long job is cancelled: its next claim ends it at once
        Job.objects.filter(pk=busy.pk).update(cancel_requested=True)
    second_log = tmp_path / "second.log"
    worker = start_worker(redis_broker, second_log, LOG_JSON="1")
    try:
        wait_for(lambda: _states(studio, ids) == [S.SUCCEEDED] * 3, worker=worker, what="the lost jobs to succeed")
    finally:
        stop_worker(worker)
    assert _states(studio, [busy.pk]) == [S.CANCELLED]


def test_a_new_upload_never_attaches_to_a_validation_job_whose_task_was_lost(
    tenant_a, redis_broker, tmp_path, settings
):
    """Issue 13, finding 2: later uploads to a set whose queued validation job had lost its task attached to that
    job (request_validation returned it) and nothing was ever validated again. Now attaching checks the broker
    and sends the task again; a real worker then validates every photo."""
    from clients import services as intake
    from clients.models import Photo
    from tests.clients.conftest import fixture_bytes, upload

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(settings.MEDIA_ROOT)},
        },
    }
    studio = tenant_a.studio
    client = redis_broker.client()
    queue_key = redis_broker.key(redis_broker.prefix)
    with tenant_context(studio):
        person = intake.create_client(name="Ada", email="ada@example.com", created_by=tenant_a.owner)
        intake.record_consent(
            client=person, consent_text=intake.current_consent_text(), method="staff", ip="203.0.113.5"
        )
        photo_set = intake.create_photo_set(client=person, created_by=tenant_a.owner)
        first = intake.add_photo(photo_set=photo_set, upload=upload(fixture_bytes("person_a_01.jpg")), source="studio")
        job = intake.request_validation(photo_set=photo_set)
    assert client.llen(queue_key) == 1
    client.delete(queue_key)  # the queue message is lost
    with tenant_context(studio):
        Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
        second = intake.add_photo(photo_set=photo_set, upload=upload(fixture_bytes("person_a_02.jpg")), source="studio")
        again = intake.request_validation(photo_set=photo_set)
    assert again.pk == job.pk
    assert client.llen(queue_key) == 1  # its task was sent again
    worker = start_worker(redis_broker, tmp_path / "worker.log")
    try:
        wait_for(lambda: _states(studio, [job.pk]) == [S.SUCCEEDED], worker=worker, what="the validation job")
    finally:
        stop_worker(worker)
    with tenant_context(studio):
        statuses = [Photo.objects.get(pk=p.pk).status for p in (first, second)]
    assert statuses == [Photo.Status.ACCEPTED] * 2


def test_each_sites_gpu_task_reaches_only_its_own_gpu_worker(tenant_a, redis_broker, tmp_path, settings, monkeypatch):
    """Issue 13, finding 3: the gpu queue was `django_q:gpu:q` whatever Q_CLUSTER_PREFIX said, so a second site's
    gpu worker on the same Redis took our tasks and dropped them (BadSignature) and the jobs were lost. Two sites
    on one Redis, each with its own gpu worker started the documented way (Q_CLUSTER_NAME=gpu): every gpu task
    reaches its own site's worker only."""
    from django_q.conf import Conf

    studio = tenant_a.studio
    other = f"test-jobs-{uuid.uuid4().hex[:10]}"
    ours_log, theirs_log = tmp_path / "ours.log", tmp_path / "theirs.log"
    ours = start_worker(redis_broker, ours_log, gpu=True, LOG_JSON="1")
    theirs = start_worker(redis_broker, theirs_log, prefix=other, gpu=True, LOG_JSON="1")
    client = redis_broker.client()
    try:
        # A GPU kind that ends at once: training a double that doesn't exist fails with a clear error.
        with tenant_context(studio):
            our_jobs = [services.enqueue_job(kind="double.train", payload={"double_id": 0}) for _ in range(4)]
        monkeypatch.setattr(Conf, "PREFIX", other)  # the other site signs its tasks with its own prefix
        settings.Q_QUEUES = {"default": other, "gpu": f"{other}-gpu"}
        with tenant_context(studio):
            their_jobs = [services.enqueue_job(kind="double.train", payload={"double_id": 0}) for _ in range(4)]
        ids = [job.pk for job in our_jobs + their_jobs]
        wait_for(
            lambda: _states(studio, ids) == [S.FAILED] * 8,
            what="every gpu job to reach a worker of its site",
        )
    finally:
        stop_worker(ours)
        stop_worker(theirs)
        for key in client.scan_iter(f"django_q:{other}*"):
            client.delete(key)
    ran_ours = {record["job_id"] for record in _events(ours_log, "job_started")}
    ran_theirs = {record["job_id"] for record in _events(theirs_log, "job_started")}
    assert ran_ours == {job.pk for job in our_jobs}
    assert ran_theirs == {job.pk for job in their_jobs}
    for path in (ours_log, theirs_log):
        assert "BadSignature" not in path.read_text(errors="replace")
    with tenant_context(studio):
        errors = set(Job.objects.filter(pk__in=ids).values_list("error", flat=True))
    assert errors == {"The digital double no longer exists."}
