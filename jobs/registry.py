"""The job-kind registry: which function runs a kind of job, and on which cluster.

    @job_handler("demo.countdown", cluster="default")
    def countdown(ctx: JobContext) -> dict | None:
        ...

Handlers live in `<app>/jobs.py` modules, imported by JobsConfig.ready() (autodiscovery), so a worker knows
every kind. A GPU kind declares its **cost** (a function of the payload that returns a `Charge`): enqueueing it
reserves credits through the hook billing registers (jobs.services.register_enqueue_hook), and a GPU kind
without a cost is refused here, at registration, so nothing runs on a GPU unbilled.

This module, like jobs.tasks, must not import torch or anything that touches CUDA: a GPU handler imports its
engine inside the function, so CUDA is only ever initialised inside the worker's child process that runs the
job (tests/jobs/test_no_torch_import.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from jobs.models import Job

CLUSTERS = ("default", "gpu")


class JobError(Exception):
    """A failure whose message is meant for people: it becomes the job's `error` as is."""


class RetryableJobError(JobError):
    """A transient failure (a busy service, a lost connection): the job is queued again while attempts remain."""


class JobCancelled(Exception):
    """Raised by JobContext.check_cancelled() when someone asked to cancel the job."""


class JobAbandoned(Exception):
    """This worker no longer owns the job (the sweeper gave it to another attempt): stop without writing."""


class UnknownJobKind(LookupError):
    pass


Handler = Callable[["JobContext"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Charge:
    """What one job of a costed kind is charged: `units` of the price-list item `item` (e.g. 1 × "train_sd15",
    4 × "render_image_sdxl"). Billing prices the item; an item its price list lacks costs what `fallback` costs."""

    item: str
    units: int = 1
    fallback: str = ""


#: A costed kind's price: a function of the job's payload (it may read the database, in the job's studio).
Cost = Callable[[dict[str, Any]], Charge]
#: The units a finished job really used, from its result (None: every unit it was charged for).
UnitsUsed = Callable[[dict[str, Any]], "int | None"]
#: The base model a job of a kind runs on, from its payload (it may read the database, in the job's studio), or
#: None when it needs none or can't say: a claim prefers an idle worker that has it loaded (jobs/affinity.py).
ModelOf = Callable[[dict[str, Any]], "str | None"]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    cluster: str
    description: str = ""
    cost: Cost | None = None
    units_used: UnitsUsed | None = None
    model: ModelOf | None = None

    @property
    def is_costed(self) -> bool:
        return self.cost is not None


_REGISTRY: dict[str, JobKind] = {}


def job_handler(
    kind: str,
    *,
    cluster: str = "default",
    description: str = "",
    cost: Cost | None = None,
    units_used: UnitsUsed | None = None,
    model: ModelOf | None = None,
) -> Callable[[Handler], Handler]:
    """Register `fn(ctx: JobContext) -> dict | None` as the handler of `kind`, run on `cluster`. A GPU kind must
    declare its `cost` (payload -> Charge), and may say how many units a finished job really used
    (`units_used`, from its result; the rest of the reservation is given back) and which base model it runs on
    (`model`, payload -> name: its jobs then go to a worker that has it loaded when one is idle)."""
    if cluster not in CLUSTERS:
        raise ValueError(f"Unknown cluster {cluster!r} for job kind {kind!r}: use one of {', '.join(CLUSTERS)}")
    if not kind or len(kind) > 100:
        raise ValueError("A job kind is a non-empty name of at most 100 characters")
    if cluster == "gpu" and cost is None:
        raise ValueError(
            f"The GPU job kind {kind!r} declares no cost: pass cost= (a function of the payload that returns a "
            "Charge), so that its jobs reserve GPU credits when they are queued"
        )
    if cost is None and units_used is not None:
        raise ValueError(f"Job kind {kind!r}: units_used= needs a cost=")

    def decorator(fn: Handler) -> Handler:
        existing = _REGISTRY.get(kind)
        if existing is not None and existing.handler is not fn and _qualname(existing.handler) != _qualname(fn):
            raise ValueError(f"Job kind {kind!r} is already registered by {_qualname(existing.handler)}")
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[kind] = JobKind(
            name=kind, handler=fn, cluster=cluster, description=doc, cost=cost, units_used=units_used, model=model
        )
        return fn

    return decorator


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def get_kind(kind: str) -> JobKind:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnknownJobKind(f"No handler is registered for the job kind {kind!r}") from None


def registered_kinds() -> dict[str, JobKind]:
    return dict(_REGISTRY)


def unregister(kind: str) -> None:
    """Tests only: remove a kind registered by a test."""
    _REGISTRY.pop(kind, None)


class JobContext:
    """What a handler gets: the job, its payload, and the ways to report progress and notice cancellation.

    Every write is a single UPDATE guarded by (state=running, attempts=this attempt): in the worker (autocommit)
    it commits at once, so the job page sees it live, and a worker that lost the job (the sweeper requeued it)
    gets JobAbandoned instead of overwriting the new attempt."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.attempt = job.attempts

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload or {}

    def _mine(self) -> Any:
        return Job.objects.filter(pk=self.job.pk, state=Job.State.RUNNING, attempts=self.attempt)

    def progress(self, pct: float, message: str = "") -> None:
        """Record progress (0-100, clamped) with a short message, and a heartbeat."""
        value = max(0, min(100, int(pct)))
        message = (message or "")[:255]
        now = timezone.now()
        updated = self._mine().update(progress=value, progress_message=message, heartbeat_at=now, updated_at=now)
        if not updated:
            raise JobAbandoned(f"Job {self.job.pk} is no longer run by this attempt")
        self.job.progress, self.job.progress_message, self.job.heartbeat_at = value, message, now

    def heartbeat(self) -> None:
        """Tell the sweeper this job is alive (long steps without progress should call it at least every
        minute)."""
        now = timezone.now()
        if not self._mine().update(heartbeat_at=now, updated_at=now):
            raise JobAbandoned(f"Job {self.job.pk} is no longer run by this attempt")
        self.job.heartbeat_at = now

    def check_cancelled(self) -> None:
        """Raise JobCancelled when a cancellation was requested; JobAbandoned when the job is no longer ours.
        Call it between steps."""
        row = self._mine().values_list("cancel_requested", flat=True).first()
        if row is None:
            raise JobAbandoned(f"Job {self.job.pk} is no longer run by this attempt")
        if row:
            self.job.cancel_requested = True
            raise JobCancelled(f"Job {self.job.pk} was cancelled")
