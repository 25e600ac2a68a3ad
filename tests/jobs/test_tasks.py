"""run_job: claiming, idempotency, success, failures, retries, bounded attempts, cancellation between steps."""

from __future__ import annotations

import logging

import pytest

from jobs import services
from jobs.models import Job
from jobs.tasks import UNEXPECTED_ERROR, run_job
from tenants.context import current_studio, tenant_context
from tests.jobs.conftest import CALLS, make_job, reload

pytestmark = pytest.mark.django_db

S = Job.State


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch):
    monkeypatch.setattr("jobs.jobs.time.sleep", lambda seconds: None)


def _fields(job: Job) -> dict:
    return {f.attname: getattr(job, f.attname) for f in Job._meta.concrete_fields}


def test_run_job_runs_the_demo_to_success(two_tenants):
    a, b = two_tenants
    job = make_job(a, payload={"steps": 4, "delay": 0.01})
    other = make_job(b)
    assert run_job(job.pk, a.studio.pk) == "succeeded"
    job = reload(job)
    assert (job.state, job.progress, job.attempts, job.error) == (S.SUCCEEDED, 100, 1, "")
    assert job.result == {"steps": 4}
    assert job.progress_message == "Lift-off"
    assert job.started_at <= job.finished_at
    assert job.heartbeat_at is not None
    assert reload(other).state == S.QUEUED  # the other studio's job is untouched
    assert current_studio() is None  # the tenant context was reset


def test_run_job_twice_for_a_finished_job_changes_nothing(tenant_a):
    job = make_job(tenant_a)
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    before = _fields(reload(job))
    assert run_job(job.pk, tenant_a.studio.pk) == "skipped:succeeded"
    assert _fields(reload(job)) == before


@pytest.mark.parametrize("state", [S.RUNNING, S.FAILED, S.CANCELLED])
def test_run_job_is_a_no_op_unless_the_job_is_queued(tenant_a, state):
    job = make_job(tenant_a, state=state, attempts=1)
    before = _fields(reload(job))
    assert run_job(job.pk, tenant_a.studio.pk) == f"skipped:{state}"
    assert _fields(reload(job)) == before


def test_run_job_with_another_studios_id_finds_nothing(two_tenants):
    a, b = two_tenants
    job = make_job(a)
    assert run_job(job.pk, b.studio.pk) == "missing"
    assert reload(job).state == S.QUEUED
    assert run_job(job.pk, 987654) == "missing"


def test_a_job_error_fails_the_job_with_its_message(tenant_a, test_kinds):
    job = make_job(tenant_a, kind="test.fail")
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    job = reload(job)
    assert (job.state, job.error, job.attempts) == (S.FAILED, "The photo set has no usable photos.", 1)
    assert job.finished_at is not None


def test_a_crash_fails_with_a_human_message_and_logs_the_traceback(tenant_a, test_kinds, caplog):
    job = make_job(tenant_a, kind="test.crash")
    with caplog.at_level(logging.ERROR, logger="jobs.tasks"):
        assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    job = reload(job)
    assert job.state == S.FAILED
    assert job.error == UNEXPECTED_ERROR
    assert "secret internal detail" not in job.error and "Traceback" not in job.error
    [record] = [r for r in caplog.records if r.name == "jobs.tasks" and r.levelno == logging.ERROR]
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)


def test_a_handler_must_return_a_dict(tenant_a, test_kinds):
    job = make_job(tenant_a, kind="test.bad_result")
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    assert reload(job).error == UNEXPECTED_ERROR


def test_an_unknown_kind_fails_clearly(tenant_a):
    job = make_job(tenant_a, kind="gone.kind")
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    assert reload(job).error == "This kind of job (gone.kind) is not known."


def test_a_bad_demo_payload_fails_with_a_specific_message(tenant_a):
    job = make_job(tenant_a, payload={"steps": 1000})
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    assert reload(job).error == "The test job counts between 1 and 100 steps."


def test_retryable_errors_requeue_on_commit_until_attempts_run_out(
    tenant_a, test_kinds, enqueued, django_capture_on_commit_callbacks
):
    job = make_job(tenant_a, kind="test.flaky", max_attempts=3)
    for attempt in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            assert run_job(job.pk, tenant_a.studio.pk) == "requeued"
        fresh = reload(job)
        assert (fresh.state, fresh.attempts) == (S.QUEUED, attempt)
        assert f"Attempt {attempt} of 3 failed: The storage service is busy" in fresh.progress_message
    assert enqueued.job_ids == [job.pk, job.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    fresh = reload(job)
    assert (fresh.state, fresh.attempts) == (S.FAILED, 3)
    assert fresh.error == "The storage service is busy (gave up after 3 attempts)"
    assert len(enqueued.calls) == 2
    assert CALLS == ["flaky"] * 3


def test_attempts_are_bounded_at_claim_time(tenant_a, test_kinds):
    job = make_job(tenant_a, kind="test.gpu", attempts=2, max_attempts=2)
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    job = reload(job)
    assert job.state == S.FAILED
    assert job.error == "The job was tried 2 times (the most allowed) without finishing."
    assert job.attempts == 2
    assert CALLS == []  # the handler never ran


def test_a_job_cancelled_while_queued_is_never_run(tenant_a):
    job = make_job(tenant_a)
    with tenant_context(tenant_a.studio):
        services.cancel_job(job=job)
    assert run_job(job.pk, tenant_a.studio.pk) == "skipped:cancelled"
    assert reload(job).attempts == 0


def test_cancellation_between_steps_stops_the_demo(tenant_a, monkeypatch):
    """Someone presses Cancel while step 2 runs: the countdown stops before step 3."""
    job = make_job(tenant_a, payload={"steps": 5, "delay": 0.01})
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            services.cancel_job(job=Job.objects.get(pk=job.pk))  # runs in the worker's tenant context

    monkeypatch.setattr("jobs.jobs.time.sleep", sleep)
    assert run_job(job.pk, tenant_a.studio.pk) == "cancelled"
    job = reload(job)
    assert (job.state, job.cancel_requested, job.progress_message) == (S.CANCELLED, True, "Cancelled")
    assert job.progress == 40  # steps 1 and 2 of 5 done
    assert len(sleeps) == 2
    assert job.finished_at is not None


def test_a_worker_that_lost_its_job_stops_without_writing(tenant_a, monkeypatch):
    """The sweeper gave the job back to the queue while this worker was stuck: its writes are refused."""
    job = make_job(tenant_a, payload={"steps": 3, "delay": 0.01})

    def sleep(seconds: float) -> None:
        Job.objects.filter(pk=job.pk).update(state=S.QUEUED, progress_message="requeued by the sweeper")

    monkeypatch.setattr("jobs.jobs.time.sleep", sleep)
    assert run_job(job.pk, tenant_a.studio.pk) == "abandoned"
    job = reload(job)
    assert (job.state, job.progress_message, job.finished_at) == (S.QUEUED, "requeued by the sweeper", None)


def test_progress_is_clamped_and_recorded(tenant_a):
    from jobs.registry import JobContext

    job = make_job(tenant_a, state=S.RUNNING, attempts=1)
    with tenant_context(tenant_a.studio):
        ctx = JobContext(Job.objects.get(pk=job.pk))
        ctx.progress(150, "x" * 300)
        fresh = Job.objects.get(pk=job.pk)
        assert (fresh.progress, len(fresh.progress_message)) == (100, 255)
        ctx.progress(-5)
        assert Job.objects.get(pk=job.pk).progress == 0
        ctx.heartbeat()
        ctx.check_cancelled()  # no cancellation requested: returns
