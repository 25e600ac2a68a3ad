"""django-q2 tasks of the job system.

`run_job(job_id, studio_id)` is the one task every job kind runs through. It is idempotent: it claims the job
(queued → running) under a row lock, so a task delivered twice, late, or for a job that already finished or
was cancelled does nothing. `sweep_stale_jobs()` (scheduled every minute) gives jobs whose worker died back to
the queue, or fails them when no attempts are left.

No torch or CUDA import here or in jobs.registry: the worker's parent process imports this module, and
CUDA must only ever be initialised inside the child that runs a GPU handler.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from jobs import affinity, workers
from jobs.broker import resend_if_lost, stale_queued_seconds
from jobs.models import Job
from jobs.registry import (
    JobAbandoned,
    JobCancelled,
    JobContext,
    JobError,
    JobKind,
    RetryableJobError,
    UnknownJobKind,
    get_kind,
)
from jobs.services import enqueue_on_commit, job_ended
from tenants.context import platform_context, tenant_context
from tenants.models import Studio

log = structlog.get_logger("jobs.tasks")

UNEXPECTED_ERROR = gettext_noop(
    "Something went wrong while running this job. The details were logged for the team; you can retry the job."
)
STALE_ERROR = gettext_noop("The worker running this job stopped responding")
SWEEP_BATCH = 500
# Pauses between tries of a claim that met a busy database (seconds).
CLAIM_RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0)


def run_job(job_id: int, studio_id: int) -> str:
    """Run one job for one studio. Returns what happened, in a word (kept as the django-q task's result)."""
    with structlog.contextvars.bound_contextvars(job_id=job_id, studio_id=studio_id):
        studio = Studio.objects.filter(pk=studio_id).first()
        if studio is None:
            log.warning("job_studio_missing")
            return "missing"
        with tenant_context(studio):
            return _run(job_id)


def _run(job_id: int) -> str:
    claimed = _claim_patiently(job_id)
    if isinstance(claimed, str):
        return claimed
    job, kind = claimed
    workers.mark_busy(job.pk)
    try:
        return _handle(job, kind)
    finally:
        workers.mark_idle()


def _handle(job: Job, kind: JobKind) -> str:
    ctx = JobContext(job)
    log.info("job_started", kind=job.kind, attempt=job.attempts, max_attempts=job.max_attempts)
    try:
        result = kind.handler(ctx)
        result = _json_result(result)
    except JobCancelled:
        return _finish(job, Job.State.CANCELLED, progress_message=gettext_noop("Cancelled"))
    except JobAbandoned:
        log.warning("job_abandoned", attempt=job.attempts)
        return "abandoned"
    except RetryableJobError as exc:
        if job.attempts < job.max_attempts:
            return _requeue(job, f"Attempt {job.attempts} of {job.max_attempts} failed: {exc}. Trying again.")
        return _finish(job, Job.State.FAILED, error=f"{exc} (gave up after {job.attempts} attempts)")
    except JobError as exc:
        log.info("job_failed", error=str(exc))
        return _finish(job, Job.State.FAILED, error=str(exc) or UNEXPECTED_ERROR)
    except Exception:
        log.exception("job_crashed", kind=job.kind)
        return _finish(job, Job.State.FAILED, error=UNEXPECTED_ERROR)
    return _finish(job, Job.State.SUCCEEDED, result=result)


def _claim_patiently(job_id: int) -> tuple[Job, JobKind] | str:
    """`_claim`, tried again when the database is busy (SQLite's "database is locked" once its busy timeout ran
    out, a PostgreSQL lock timeout or serialization failure): a job whose claim failed would stay queued with no
    message left to run it."""
    for attempt, pause in enumerate((*CLAIM_RETRY_PAUSES, None), start=1):
        try:
            return _claim(job_id)
        except OperationalError as exc:
            if pause is None:
                raise
            log.warning("job_claim_retry", attempt=attempt, error=str(exc))
            time.sleep(pause)
    raise AssertionError("unreachable")


def _claim(job_id: int) -> tuple[Job, JobKind] | str:
    """queued → running under a row lock, with a new attempt; anything else is a no-op (or a clear failure)."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            log.warning("job_missing")
            return "missing"
        if job.state != Job.State.QUEUED:
            log.info("job_not_queued", state=job.state)
            return f"skipped:{job.state}"
        if job.cancel_requested:
            _set_terminal(job, Job.State.CANCELLED, now, progress_message=gettext_noop("Cancelled before it started"))
            return "cancelled"
        try:
            kind = get_kind(job.kind)
        except UnknownJobKind:
            _set_terminal(job, Job.State.FAILED, now, error=f"This kind of job ({job.kind}) is not known.")
            return "failed"
        if job.attempts >= job.max_attempts:
            _set_terminal(
                job,
                Job.State.FAILED,
                now,
                error=f"The job was tried {job.attempts} times (the most allowed) without finishing.",
            )
            return "failed"
        deferral = affinity.deferral_for(job, kind)
        if deferral is not None:
            affinity.record(job, deferral)
            job.save(update_fields=["updated_at"])  # the sweeper's "queued, untouched" clock starts again
            enqueue_on_commit(job)
            log.info(
                "job_deferred",
                kind=job.kind,
                model=deferral.model,
                warm_worker=deferral.warm_worker,
                deferrals=deferral.deferrals,
            )
            return "deferred"
        job.state = Job.State.RUNNING
        job.attempts += 1
        job.started_at = now
        job.heartbeat_at = now
        job.finished_at = None
        job.error = ""
        job.progress_message = "Started"
        job.save(
            update_fields=[
                "state",
                "attempts",
                "started_at",
                "heartbeat_at",
                "finished_at",
                "error",
                "progress_message",
                "updated_at",
            ]
        )
    return job, kind


def _set_terminal(job: Job, state: str, now: Any, *, error: str = "", progress_message: str | None = None) -> None:
    job.state = state
    job.finished_at = now
    job.error = error
    if progress_message is not None:
        job.progress_message = progress_message
    job.save(update_fields=["state", "finished_at", "error", "progress_message", "updated_at"])
    job_ended(job)
    log.info("job_finished", state=state, error=error or None)


def _mine(job: Job) -> Any:
    """The job's row, locked, if this attempt still owns it."""
    return Job.objects.select_for_update().filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).first()


def _finish(
    job: Job,
    state: str,
    *,
    error: str = "",
    result: dict[str, Any] | None = None,
    progress_message: str | None = None,
) -> str:
    now = timezone.now()
    with transaction.atomic():
        locked = _mine(job)
        if locked is None:
            log.warning("job_abandoned", attempt=job.attempts)
            return "abandoned"
        if state == Job.State.SUCCEEDED:
            locked.progress = 100
            locked.result = result
            locked.progress_message = progress_message or locked.progress_message or gettext_noop("Done")
        elif progress_message is not None:
            locked.progress_message = progress_message
        locked.state = state
        locked.error = error
        locked.finished_at = now
        locked.heartbeat_at = now
        locked.save()
        job_ended(locked)
    log.info("job_finished", state=state, error=error or None, attempt=job.attempts)
    return str(state)


def _requeue(job: Job, message: str) -> str:
    with transaction.atomic():
        locked = _mine(job)
        if locked is None:
            return "abandoned"
        locked.state = Job.State.QUEUED
        locked.progress_message = message[:255]
        locked.heartbeat_at = None
        locked.save(update_fields=["state", "progress_message", "heartbeat_at", "updated_at"])
        enqueue_on_commit(locked)
    log.info("job_requeued", attempt=job.attempts, reason=message)
    return "requeued"


def _json_result(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise TypeError(f"A job handler must return a dict or None, not {type(result).__name__}")
    return json.loads(json.dumps(result, cls=DjangoJSONEncoder))


# --- The sweeper ----------------------------------------------------------------------------------------------


def sweep_stale_jobs() -> dict[str, int]:
    """Platform work across every studio, every minute:

    - running jobs whose heartbeat is older than JOB_HEARTBEAT_STALE_SECONDS: queued again (and re-enqueued on
      commit) while attempts remain, else failed;
    - queued jobs untouched for JOB_QUEUED_STALE_SECONDS whose task the broker no longer holds (lost with a
      killed worker's prefetch queue, a dropped message): their task is sent again (jobs/broker.py)."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_STALE_SECONDS)
    requeued = failed = 0
    with platform_context(), transaction.atomic():
        stale = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state=Job.State.RUNNING)
            .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff))
            .order_by("heartbeat_at")[:SWEEP_BATCH]
        )
        now = timezone.now()
        for job in stale:
            if job.attempts < job.max_attempts:
                job.state = Job.State.QUEUED
                job.heartbeat_at = None
                job.progress_message = (
                    f"The worker stopped responding during attempt {job.attempts} of {job.max_attempts}; queued again"
                )
                job.save(update_fields=["state", "heartbeat_at", "progress_message", "updated_at"])
                enqueue_on_commit(job)
                requeued += 1
            else:
                job.state = Job.State.FAILED
                job.error = STALE_ERROR
                job.finished_at = now
                job.save(update_fields=["state", "error", "finished_at", "updated_at"])
                job_ended(job)
                failed += 1
            log.info("job_swept", job_id=job.pk, studio_id=job.studio_id, state=job.state)
    resent = _resend_lost_tasks()
    if requeued or failed or resent:
        log.warning("stale_jobs_swept", requeued=requeued, failed=failed, resent=resent)
    return {"requeued": requeued, "failed": failed, "resent": resent}


def _resend_lost_tasks() -> int:
    cutoff = timezone.now() - timedelta(seconds=stale_queued_seconds())
    resent = 0
    listed: dict[str, set[int] | None] = {}
    with platform_context(), transaction.atomic():
        waiting = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state=Job.State.QUEUED, updated_at__lt=cutoff)
            .order_by("updated_at")[:SWEEP_BATCH]
        )
        for job in waiting:
            resent += resend_if_lost(job, listed=listed)
    return resent
