"""What the task broker holds: which jobs have a `run_job` task waiting in a queue.

A queued job whose task was lost (a worker killed with SIGKILL while tasks sat in its prefetch queue, a queue
message dropped) would otherwise wait for ever: the sweeper and `resend_if_lost` send its task again when the
broker no longer holds it. A duplicate task is harmless: the claim is idempotent (queued → running under a row
lock), so the second delivery finds the job running or finished and does nothing.

Redis: the queue is a list, read whole (LRANGE) and each entry's signed package decoded (entries of another site on
the same Redis can't be, and are skipped). A task that a worker took from the list is no longer there, whether it
runs, waits in that worker's prefetch queue, or was lost with it: so only jobs queued for longer than a window are
looked at. ORM broker: the OrmQ rows of the queue; a row stays until its task is acknowledged (a dead worker's
task comes back after `retry` seconds), so a job with a row is never resent. Other brokers can't be listed:
`None`, and the callers resend.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from jobs.services import RUN_JOB_TASK, enqueue_on_commit, queue_name

log = structlog.get_logger("jobs.broker")


def queued_job_ids(queue: str) -> set[int] | None:
    """Ids of the jobs whose run_job task waits in the broker queue `queue`; None if the broker can't be listed
    (an unknown broker type or an unreachable one)."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.signing import BadSignature, SignedPackage

    try:
        broker = get_broker(queue)
        if isinstance(broker, Redis):
            raw_items: list[str | bytes] = list(broker.connection.lrange(broker.list_key, 0, -1))
        elif isinstance(broker, ORM):
            from django_q.conf import Conf
            from django_q.models import OrmQ

            raw_items = list(OrmQ.objects.using(Conf.ORM).filter(key=queue).values_list("payload", flat=True))
        else:
            return None
    except Exception:  # a broker that doesn't answer: the callers resend (a duplicate is a no-op)
        log.warning("broker_unreadable", queue=queue, exc_info=True)
        return None
    ids: set[int] = set()
    for raw in raw_items:
        try:
            task = SignedPackage.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (BadSignature, ValueError, TypeError, EOFError, AttributeError, ImportError):
            continue  # another site's task, or not a django-q package
        if isinstance(task, dict) and task.get("func") == RUN_JOB_TASK and task.get("args"):
            job_id = task["args"][0]
            if isinstance(job_id, int):
                ids.add(job_id)
    return ids


def queued_for_long(job: Job, *, seconds: float) -> bool:
    """Whether the job has been queued, untouched, for more than `seconds`."""
    return job.state == Job.State.QUEUED and job.updated_at < timezone.now() - timedelta(seconds=seconds)


def resend_if_lost(job: Job, *, listed: dict[str, set[int] | None] | None = None, touch: bool = True) -> bool:
    """Send a QUEUED job's task again (on commit) if its queue doesn't hold it. With `touch` (the job's row locked
    by the caller) the job's updated_at moves on, so the sweeper looks again only one window later. `listed`
    caches queue listings across calls."""
    queue = queue_name(job.cluster)
    cache = listed if listed is not None else {}
    if queue not in cache:
        cache[queue] = queued_job_ids(queue)
    ids = cache[queue]
    if ids is not None and job.pk in ids:
        return False
    if touch:
        job.save(update_fields=["updated_at"])
    enqueue_on_commit(job)
    log.warning("job_task_resent", job_id=job.pk, studio_id=job.studio_id, queue=queue, listed=ids is not None)
    return True


def stale_queued_seconds() -> int:
    """How long a job may wait queued before the broker is asked whether its task is still there."""
    return int(settings.JOB_QUEUED_STALE_SECONDS)
