"""The stale-job sweeper and its every-minute schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from jobs.apps import SWEEP_SCHEDULE_NAME, ensure_sweep_schedule
from jobs.models import Job
from jobs.tasks import STALE_ERROR, sweep_stale_jobs
from tenants.context import current_studio, in_platform_context
from tests.jobs.conftest import make_job, reload

pytestmark = pytest.mark.django_db

S = Job.State


def _ago(seconds: int):
    return timezone.now() - timedelta(seconds=seconds)


def test_stale_running_jobs_of_every_studio_are_requeued_on_commit(
    two_tenants, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.JOB_HEARTBEAT_STALE_SECONDS = 300
    a, b = two_tenants
    stale_a = make_job(a, state=S.RUNNING, attempts=1, max_attempts=3, heartbeat_at=_ago(301))
    stale_b = make_job(b, state=S.RUNNING, attempts=2, max_attempts=3, heartbeat_at=_ago(3600))
    alive = make_job(a, state=S.RUNNING, attempts=1, heartbeat_at=_ago(10))
    finished = make_job(a, state=S.SUCCEEDED, attempts=1, heartbeat_at=_ago(3600))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale_jobs() == {"requeued": 2, "failed": 0, "resent": 0}
        assert enqueued.calls == []  # only once the sweep's transaction commits
    for job in (stale_a, stale_b):
        fresh = reload(job)
        assert (fresh.state, fresh.heartbeat_at) == (S.QUEUED, None)
        assert "stopped responding" in fresh.progress_message
    assert reload(alive).state == S.RUNNING
    assert reload(finished).state == S.SUCCEEDED
    assert sorted((args[1], args[2]) for args, _ in enqueued.calls) == sorted(
        [(stale_a.pk, a.studio.pk), (stale_b.pk, b.studio.pk)]
    )
    assert not in_platform_context() and current_studio() is None


def test_stale_jobs_without_attempts_left_fail(tenant_a, settings, enqueued, django_capture_on_commit_callbacks):
    settings.JOB_HEARTBEAT_STALE_SECONDS = 60
    job = make_job(tenant_a, state=S.RUNNING, attempts=3, max_attempts=3, heartbeat_at=_ago(61))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale_jobs() == {"requeued": 0, "failed": 1, "resent": 0}
    job = reload(job)
    assert (job.state, job.error) == (S.FAILED, STALE_ERROR)
    assert job.finished_at is not None
    assert enqueued.calls == []


def test_a_requeued_job_runs_again_as_a_new_attempt(tenant_a, settings, enqueued, django_capture_on_commit_callbacks):
    from jobs.tasks import run_job

    settings.JOB_HEARTBEAT_STALE_SECONDS = 60
    job = make_job(tenant_a, state=S.RUNNING, attempts=1, heartbeat_at=_ago(120), payload={"steps": 1, "delay": 0})
    with django_capture_on_commit_callbacks(execute=True):
        sweep_stale_jobs()
    (args, _kwargs) = enqueued.calls[0]
    assert run_job(*args[1:]) == "succeeded"
    job = reload(job)
    assert (job.state, job.attempts, job.progress) == (S.SUCCEEDED, 2, 100)


def test_the_sweeper_is_scheduled_every_minute_idempotently():
    schedule = Schedule.objects.get(name=SWEEP_SCHEDULE_NAME)  # made by post_migrate
    assert schedule.func == "jobs.tasks.sweep_stale_jobs"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
    from django.apps import apps

    ensure_sweep_schedule(apps.get_app_config("generation"))
    ensure_sweep_schedule(apps.get_app_config("generation"))
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1
