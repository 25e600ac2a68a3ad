"""Job actions (writes). One function per action, each in a transaction; enqueueing waits for the commit.

All of them run in the current tenant context (a request, a task, or `tenant_context(studio)`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from jobs.models import Job
from jobs.registry import JobKind, get_kind
from tenants.context import require_studio_id
from tenants.models import User
from tenants.refusals import Refused

log = structlog.get_logger("jobs")

RUN_JOB_TASK = "jobs.tasks.run_job"
MAX_PAYLOAD_CHARS = 64_000


class JobStateError(Refused, ValueError):
    """The action does not fit the job's state (e.g. retrying a job that succeeded): 409. The message is for
    people."""

    status = 409
    code = "conflict"


def queue_name(cluster: str) -> str:
    """The django-q2 queue (broker list key) of a cluster, named from the site's prefix (settings.Q_QUEUES: the
    default queue is the prefix, the gpu queue `<prefix>-gpu`), read from settings rather than from django_q's
    Conf, because inside a GPU worker Conf names the gpu queue."""
    queues = settings.Q_QUEUES
    if cluster not in queues:
        raise ValueError(f"Unknown job cluster {cluster!r}")
    return str(queues[cluster])


def enqueue_on_commit(job: Job) -> None:
    """Send the job to its cluster's queue once the current transaction commits (at once in autocommit)."""
    job_id, studio_id, queue = job.pk, job.studio_id, queue_name(job.cluster)

    def _send() -> None:
        from django_q.tasks import async_task

        async_task(RUN_JOB_TASK, job_id, studio_id, cluster=queue, task_name=f"job-{job_id}")
        log.info("job_enqueued", job_id=job_id, studio_id=studio_id, queue=queue)

    transaction.on_commit(_send)


#: Sent (sender: the Job class, `job=`) in the transaction that ends a job; the apps above the job system connect
#: to it in ready(): billing settles or releases the job's GPU credits (billing.credits.job_finished), clients
#: follows a validation job that ends with photos still pending with a new one.
job_finished = Signal()

#: Called with (job, kind) in the transaction that queues a job of a costed kind, after the row is saved: billing
#: registers its credit reservation here (billing.apps). A hook refuses by raising (billing: OutOfCredits, a
#: Refused with status 402): the transaction rolls back and nothing is queued.
EnqueueHook = Callable[[Job, JobKind], None]
_enqueue_hooks: dict[str, EnqueueHook] = {}


def register_enqueue_hook(name: str, hook: EnqueueHook) -> None:
    """Register (or replace, by name: ready() may run twice) what happens when a costed job is queued."""
    _enqueue_hooks[name] = hook


def job_ended(job: Job) -> None:
    """Called in the transaction that makes a job succeeded, failed or cancelled (every such transition calls
    it): sends `job_finished`."""
    job_finished.send(sender=Job, job=job)


def enqueue_job(
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    user: User | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Create a queued job of a registered kind in the current studio; the task is enqueued on commit. A costed
    kind (every GPU kind) runs the enqueue hooks in the same transaction: billing reserves its credits there.

    Raises UnknownJobKind for a kind nobody registered, ValueError for a bad payload or max_attempts, and what a
    hook raises (billing's OutOfCredits) with nothing queued."""
    job_kind = get_kind(kind)
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise ValueError("A job's payload must be a JSON object")
    try:
        if len(json.dumps(payload)) > MAX_PAYLOAD_CHARS:
            raise ValueError(f"A job's payload must be at most {MAX_PAYLOAD_CHARS} characters of JSON")
    except TypeError:
        raise ValueError("A job's payload must contain only JSON values") from None
    if max_attempts is not None and not 1 <= max_attempts <= 100:
        raise ValueError("max_attempts must be between 1 and 100")
    require_studio_id()
    with transaction.atomic():
        job = Job(
            kind=kind,
            payload=payload,
            cluster=job_kind.cluster,
            created_by=user if user is not None and user.is_authenticated else None,
            progress_message=gettext_noop("Waiting for a worker"),
        )
        if max_attempts is not None:
            job.max_attempts = max_attempts
        job.save()
        if job_kind.is_costed:
            for hook in _enqueue_hooks.values():
                hook(job, job_kind)
        enqueue_on_commit(job)
    log.info("job_created", job_id=job.pk, kind=kind, cluster=job.cluster)
    return job


def cancel_job(*, job: Job) -> Job:
    """Cancel a job: a queued one is cancelled at once; a running one gets `cancel_requested` and its worker
    stops at its next check. Raises JobStateError for a finished job."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        now = timezone.now()
        if locked.state == Job.State.QUEUED:
            locked.state = Job.State.CANCELLED
            locked.cancel_requested = True
            locked.finished_at = now
            locked.progress_message = gettext_noop("Cancelled before it started")
            locked.save(update_fields=["state", "cancel_requested", "finished_at", "progress_message", "updated_at"])
            job_ended(locked)
        elif locked.state == Job.State.RUNNING:
            if not locked.cancel_requested:
                locked.cancel_requested = True
                locked.progress_message = gettext_noop("Cancelling…")
                locked.save(update_fields=["cancel_requested", "progress_message", "updated_at"])
        else:
            raise JobStateError(
                _("This job has already %(state)s; it cannot be cancelled.")
                % {"state": locked.get_state_display().lower()}
            )
    log.info("job_cancel", job_id=locked.pk, state=locked.state)
    _refresh(job, locked)
    return job


def retry_job(*, job: Job, user: User | None = None) -> Job:
    """Run a failed or cancelled job again: back to queued with a fresh set of attempts, enqueued on commit.
    Raises JobStateError for any other state."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if not locked.can_retry:
            raise JobStateError(
                _("Only failed or cancelled jobs can be retried; this one is %(state)s.")
                % {"state": locked.get_state_display().lower()}
            )
        get_kind(locked.kind)  # a kind that no longer exists cannot be retried (UnknownJobKind)
        locked.state = Job.State.QUEUED
        locked.attempts = 0
        locked.progress = 0
        locked.progress_message = gettext_noop("Waiting for a worker")
        locked.error = ""
        locked.result = None
        locked.cancel_requested = False
        locked.heartbeat_at = None
        locked.started_at = None
        locked.finished_at = None
        locked.save()
        enqueue_on_commit(locked)
    log.info("job_retry", job_id=locked.pk, user_id=getattr(user, "pk", None))
    _refresh(job, locked)
    return job


def _refresh(target: Job, source: Job) -> None:
    for field in Job._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
