"""A queued job never waits without a word: the workers' beacons (jobs/workers.py) and what the pages say
when no worker of a job's cluster is alive. Real worker processes writing beacons: tests/tenants/test_commands.py
(runall) and tests/e2e/test_quickstart.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches

from jobs import workers
from jobs.models import Job
from jobs.services import queue_name
from tests.jobs.conftest import make_job


@pytest.fixture(autouse=True)
def _no_beacons() -> Iterator[None]:
    caches[workers.CACHE_ALIAS].clear()
    yield
    caches[workers.CACHE_ALIAS].clear()


def test_a_cluster_without_beacons_is_not_alive_and_one_beacon_makes_it_alive() -> None:
    status = workers.worker_status(Job.Cluster.GPU)
    assert not status.alive and status.last_seen is None
    assert status.start_command == "Q_CLUSTER_NAME=gpu python manage.py qcluster"
    workers.record_beacon(Job.Cluster.GPU)
    status = workers.worker_status(Job.Cluster.GPU)
    assert status.alive and status.last_seen is not None and status.engine
    assert not workers.worker_status(Job.Cluster.DEFAULT).alive  # per cluster


def test_a_stale_beacon_is_remembered_as_last_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    workers.record_beacon(Job.Cluster.GPU)
    caches[workers.CACHE_ALIAS].delete(workers.ALIVE_KEY.format(queue=queue_name(Job.Cluster.GPU)))  # its TTL ran out
    status = workers.worker_status(Job.Cluster.GPU)
    assert not status.alive and status.last_seen is not None


def test_the_job_page_says_no_gpu_worker_is_running_and_how_to_start_one(client_a: Any, tenant_a: Any) -> None:
    job = make_job(tenant_a, kind="double.train", cluster=Job.Cluster.GPU, progress_message="Waiting for a worker")
    html = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/").content.decode()
    assert "No GPU worker is running" in html
    assert "Q_CLUSTER_NAME=gpu python manage.py qcluster" in html
    # The progress fragment the page polls says it too, and stops saying it once a worker is alive.
    assert "No GPU worker is running" in client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/progress/").content.decode()
    workers.record_beacon(Job.Cluster.GPU)
    assert "worker-notice" not in client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/progress/").content.decode()


def test_a_default_cluster_job_names_the_task_worker(client_a: Any, tenant_a: Any) -> None:
    workers.record_beacon(Job.Cluster.GPU)  # a gpu worker doesn't run default-cluster jobs
    job = make_job(tenant_a)
    html = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/").content.decode()
    assert "No task worker is running" in html and "python manage.py qcluster" in html


def test_a_running_or_finished_job_has_no_notice(client_a: Any, tenant_a: Any) -> None:
    for state in (Job.State.RUNNING, Job.State.SUCCEEDED, Job.State.CANCELLED):
        job = make_job(tenant_a, kind="double.train", cluster=Job.Cluster.GPU, state=state)
        assert "worker-notice" not in client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/").content.decode()


def test_a_gpu_worker_without_the_engine_is_named(
    client_a: Any, tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "engine_installed", lambda: False)
    workers.record_beacon(Job.Cluster.GPU)
    job = make_job(tenant_a, kind="double.train", cluster=Job.Cluster.GPU)
    html = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/").content.decode()
    assert "can't run the engine" in html and "pip install -e '.[engine]'" in html


def test_the_beacon_thread_starts_once_per_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "current_cluster", lambda: Job.Cluster.GPU)
    monkeypatch.setattr(workers, "_started", type(workers._started)())
    workers.start_beacon(proc_name="Process-1")
    workers.start_beacon(proc_name="Process-1")  # django-q2 may send post_spawn again: still one thread
    for _ in range(100):
        if workers.worker_status(Job.Cluster.GPU).alive:
            break
        time.sleep(0.02)
    assert workers.worker_status(Job.Cluster.GPU).alive
