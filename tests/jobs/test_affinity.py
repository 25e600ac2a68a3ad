"""Model affinity at claim time (jobs/affinity.py) and the per-worker beacons it reads (jobs/workers.py): this
process made to look like a gpu worker, its peers' beacons written into their slots. Two real workers on Redis:
tests/generation/test_model_affinity.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.utils import timezone

from jobs import affinity, workers
from jobs.models import Job
from jobs.registry import Charge, JobContext, job_handler, unregister
from jobs.services import queue_name
from jobs.tasks import run_job
from tests.jobs.conftest import Enqueued, make_job, reload

RAN: list[int] = []
LOADED_HERE: list[str] = []


@pytest.fixture(autouse=True)
def _clean_beacons() -> Iterator[None]:
    caches[workers.CACHE_ALIAS].clear()
    yield
    caches[workers.CACHE_ALIAS].clear()


@pytest.fixture
def render_kind() -> Iterator[str]:
    RAN.clear()

    @job_handler(
        "test.render",
        cluster="gpu",
        cost=lambda payload: Charge(item="test_gpu_job"),
        model=lambda payload: payload.get("model"),
    )
    def render(ctx: JobContext) -> dict:
        RAN.append(ctx.job.pk)
        return {"ok": True}

    yield "test.render"
    unregister("test.render")


@pytest.fixture
def as_gpu_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as a gpu worker whose beacon runs, holding LOADED_HERE in its (pretend) pipeline cache."""
    started = threading.Event()
    started.set()
    LOADED_HERE.clear()
    monkeypatch.setattr(workers, "_started", started)
    monkeypatch.setattr(workers, "_cluster", [Job.Cluster.GPU])
    monkeypatch.setattr(workers, "_slot", [])
    monkeypatch.setattr(workers, "_state", {"busy": False, "job_id": None, "since": None})
    monkeypatch.setattr(workers, "_state_hooks", [lambda: {"loaded": list(LOADED_HERE), "loads": len(LOADED_HERE)}])
    yield


def peer(slot: int, *, loaded: list[str], busy: bool = False, worker: str = "") -> None:
    """Another worker's beacon in `slot`."""
    caches[workers.CACHE_ALIAS].set(
        workers.SLOT_KEY.format(queue=queue_name(Job.Cluster.GPU), slot=slot),
        {
            "worker": worker or f"gpu-host-{slot}:4{slot}",
            "host": f"gpu-host-{slot}",
            "pid": 40 + slot,
            "at": timezone.now().isoformat(),
            "busy": busy,
            "job_id": 99 if busy else None,
            "loaded": loaded,
            "loads": len(loaded),
        },
        timeout=workers.BEACON_TTL_SECONDS,
    )


def _queue(tenant: Any, model: str = "sdxl-base") -> Job:
    return make_job(tenant, kind="test.render", cluster=Job.Cluster.GPU, payload={"model": model})


@pytest.mark.django_db(transaction=True)
def test_a_worker_without_the_model_hands_the_job_to_an_idle_worker_that_has_it(
    tenant_a: Any, render_kind: str, as_gpu_worker: None, enqueued: Enqueued
) -> None:
    LOADED_HERE.append("sd15-base")
    peer(3, loaded=["sdxl-base"])
    job = _queue(tenant_a)
    assert run_job(job.pk, tenant_a.studio.pk) == "deferred"
    job = reload(job)
    assert (job.state, job.attempts, RAN) == (Job.State.QUEUED, 0, [])  # no attempt taken, nothing ran
    assert enqueued.job_ids == [job.pk]  # its task was sent again (after commit)
    # Another cold worker that gets it defers again; the warm one (or anyone, once it is busy) runs it.
    assert run_job(job.pk, tenant_a.studio.pk) == "deferred"
    peer(3, loaded=["sdxl-base"], busy=True)
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    assert [job.pk] == RAN and reload(job).attempts == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "situation",
    ["warm peer busy", "loaded here too", "no peer has it", "kind names no model", "not a worker", "affinity off"],
)
def test_a_worker_claims_the_job_when_no_idle_worker_is_warmer(
    tenant_a: Any,
    render_kind: str,
    as_gpu_worker: None,
    enqueued: Enqueued,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    situation: str,
) -> None:
    peer(0, loaded=["sdxl-base"], busy=situation == "warm peer busy")
    if situation == "loaded here too":
        LOADED_HERE.append("sdxl-base")
    if situation == "not a worker":  # a web process or a test running jobs in process
        monkeypatch.setattr(workers, "_started", threading.Event())
    if situation == "affinity off":
        settings.JOB_AFFINITY_WAIT_SECONDS = 0
    job = _queue(tenant_a, model="sd15-base" if situation == "no peer has it" else "sdxl-base")
    if situation == "kind names no model":
        job = make_job(tenant_a, kind="test.gpu", cluster=Job.Cluster.GPU)
        from tests.jobs.conftest import CALLS

        CALLS.clear()
        unregister("test.gpu")
        job_handler("test.gpu", cluster="gpu", cost=lambda payload: Charge(item="test_gpu_job"))(
            lambda ctx: RAN.append(ctx.job.pk) or {}
        )
    try:
        assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    finally:
        unregister("test.gpu")
    assert [job.pk] == RAN and enqueued.calls == []


@pytest.mark.django_db(transaction=True)
def test_a_job_is_handed_over_for_a_bounded_time_and_number_of_times(
    tenant_a: Any, render_kind: str, as_gpu_worker: None, enqueued: Enqueued, settings: Any
) -> None:
    peer(1, loaded=["sdxl-base"])
    job = _queue(tenant_a)
    for _ in range(affinity.MAX_DEFERRALS):
        assert run_job(job.pk, tenant_a.studio.pk) == "deferred"
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"  # the warm worker never got it: run it here

    late = _queue(tenant_a)
    assert run_job(late.pk, tenant_a.studio.pk) == "deferred"
    key = affinity.DEFERRAL_KEY.format(queue=queue_name(Job.Cluster.GPU), job_id=late.pk)
    first = timezone.now() - timedelta(seconds=settings.JOB_AFFINITY_WAIT_SECONDS + 1)
    caches[workers.CACHE_ALIAS].set(key, {"count": 1, "first": first.isoformat()})
    assert run_job(late.pk, tenant_a.studio.pk) == "succeeded"  # waited long enough
    assert [job.pk, late.pk] == RAN


def test_each_worker_keeps_its_own_slot_and_says_at_once_when_it_is_busy(
    as_gpu_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer(0, loaded=["sd15-base"])  # a worker already there
    monkeypatch.setattr(workers, "worker_id", lambda: "this-host:1234")
    LOADED_HERE.append("sdxl-base")
    workers.record_worker(Job.Cluster.GPU)
    listed = {beacon.worker: beacon for beacon in workers.live_workers(Job.Cluster.GPU)}
    assert set(listed) == {"gpu-host-0:40", "this-host:1234"}
    mine = listed["this-host:1234"]
    assert (mine.busy, mine.loaded, mine.loads) == (False, ("sdxl-base",), 1)
    assert workers._slot == [1]

    workers.mark_busy(7)  # written at once, not at the next beat
    mine = next(b for b in workers.live_workers(Job.Cluster.GPU) if b.worker == "this-host:1234")
    assert (mine.busy, mine.job_id) == (True, 7)
    workers.mark_idle()
    assert not next(b for b in workers.live_workers(Job.Cluster.GPU) if b.worker == "this-host:1234").busy

    # This worker stalled past its beacon's lifetime and another took its slot: it takes a free one.
    peer(1, loaded=[], worker="newcomer:77")
    workers.record_worker(Job.Cluster.GPU)
    listed = {b.worker for b in workers.live_workers(Job.Cluster.GPU)}
    assert listed == {"gpu-host-0:40", "newcomer:77", "this-host:1234"}
    assert workers._slot == [2]


def test_beacons_of_another_site_on_the_same_cache_are_not_listed(as_gpu_worker: None, settings: Any) -> None:
    workers.record_worker(Job.Cluster.GPU)
    assert len(workers.live_workers(Job.Cluster.GPU)) == 1
    settings.Q_QUEUES = {"default": "other-site", "gpu": "other-site-gpu"}
    assert workers.live_workers(Job.Cluster.GPU) == []
    assert not workers.worker_status(Job.Cluster.GPU).alive


def test_the_workers_command_lists_each_live_worker(as_gpu_worker: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from django.core.management import call_command

    peer(0, loaded=["sdxl-base", "sd15-base"], busy=True)
    monkeypatch.setattr(workers, "worker_id", lambda: "this-host:1234")
    workers.record_worker(Job.Cluster.GPU)
    out = StringIO()
    call_command("workers", stdout=out)
    text = out.getvalue()
    assert "Default (CPU): 0 workers alive" in text and "start one with: python manage.py qcluster" in text
    assert "GPU: 2 workers alive" in text
    assert "gpu-host-0:40  busy with job 99" in text and "models loaded: sdxl-base, sd15-base (2 cold loads)" in text
    assert "this-host:1234  idle" in text and "models loaded: none (0 cold loads)" in text
