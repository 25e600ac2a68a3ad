"""Model affinity: a job goes to an idle worker that has its base model loaded, when there is one.

Every gpu job of a site goes to one broker list and every gpu worker's pusher waits on it; Redis hands a task to
whichever pusher has waited longest, whatever base models its worker has loaded. A render that lands on a worker
without its model pays a cold load (seconds for SD 1.5, more for SDXL, and the GPU memory of a second copy) that
an idle worker with the model warm would not.

So, when a worker claims a job (jobs.tasks._claim, the job's row locked), it may **defer** it instead:

- the job's kind names its model (`job_handler(model=...)`, a function of the payload), and this worker hasn't it
  loaded;
- another worker of the same cluster is alive, idle, and has it loaded (their own beacons, jobs/workers.py,
  written at once when a job is claimed and when it ends);
- the job was first deferred less than `JOB_AFFINITY_WAIT_SECONDS` ago and fewer than `MAX_DEFERRALS` times.

Deferring sends the task again (the same `run_job` task, on commit) and takes no attempt; the idle warm worker's
pusher, which has waited on the list longer than this one (it went back to waiting the moment it handed over the
task), gets it. Another cold worker that gets it first defers again, within the bounds. A busy warm worker is
never waited for (a load on a free worker costs seconds, waiting for a busy one a whole job), and once the bounds
are spent whoever gets the job runs it, warm or not. Nothing here is needed for a job to run: with no beacon, no
cache, one worker, or a kind that names no model, the claim goes on as before.

The deferrals of a job are counted in the `workers` cache (`affinity:<queue>:<job id>`), not in its row: they are
routing, not the job's history, and a lost count only costs one more bounded round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.utils import timezone

from jobs import workers
from jobs.models import Job
from jobs.registry import JobKind
from jobs.services import queue_name

log = structlog.get_logger("jobs.affinity")

MAX_DEFERRALS = 8
DEFERRAL_KEY = "affinity:{queue}:{job_id}"  # the queue names the site: job ids are only unique within one


@dataclass(frozen=True)
class Deferral:
    """Why a job is sent again rather than claimed here: its model, and the idle worker that has it loaded."""

    model: str
    warm_worker: str
    deferrals: int  # this one included


def wait_seconds() -> float:
    """How long after its first hand-over a job may still be handed to a warm worker (0: affinity off)."""
    return float(settings.JOB_AFFINITY_WAIT_SECONDS)


def deferral_for(job: Job, kind: JobKind) -> Deferral | None:
    """A Deferral when this worker should leave `job` to an idle worker that has its model loaded; else None
    (claim it here). Cheap checks first: the payload's model is read only when an idle peer holds some model."""
    if kind.model is None or not workers.is_worker() or wait_seconds() <= 0:
        return None
    me = workers.worker_id()
    peers = [w for w in workers.live_workers(job.cluster) if w.worker != me and not w.busy and w.loaded]
    if not peers:
        return None
    count, first = _deferrals(job)
    if count >= MAX_DEFERRALS or (first is not None and (timezone.now() - first).total_seconds() > wait_seconds()):
        return None
    try:
        model = kind.model(job.payload or {})
    except Exception:  # a payload the kind can't read: the handler will say what is wrong with it
        log.warning("job_model_unreadable", kind=job.kind, exc_info=True)
        return None
    if not model or model in _loaded_here():
        return None
    warm = [w for w in peers if model in w.loaded]
    if not warm:
        return None
    return Deferral(model=model, warm_worker=warm[0].worker, deferrals=count + 1)


def record(job: Job, deferral: Deferral) -> None:
    """Count the deferral (the first one's time starts the wait)."""
    count, first = _deferrals(job)
    value = {"count": count + 1, "first": (first or timezone.now()).isoformat()}
    try:
        workers.beacon_cache().set(_key(job), value, timeout=max(60, int(wait_seconds() * 10)))
    except Exception:  # uncounted: the next worker may defer once more, within MAX_DEFERRALS of its own count
        log.warning("job_deferral_unrecorded", job_id=job.pk, exc_info=True)


def _deferrals(job: Job) -> tuple[int, datetime | None]:
    try:
        value = workers.beacon_cache().get(_key(job)) or {}
        return int(value.get("count") or 0), datetime.fromisoformat(value["first"]) if value.get("first") else None
    except Exception:  # unreadable: claim (never defer on what can't be counted)
        return MAX_DEFERRALS, None


def _key(job: Job) -> str:
    return DEFERRAL_KEY.format(queue=queue_name(job.cluster), job_id=job.pk)


def _loaded_here() -> tuple[str, ...]:
    state: dict[str, Any] = workers.held_here()
    return tuple(str(name) for name in state.get("loaded") or ())
