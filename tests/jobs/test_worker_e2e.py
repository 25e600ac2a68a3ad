"""End to end with a REAL django-q2 worker (`manage.py qcluster`) on the Redis broker and the test database.

The test is transactional, so what it writes is committed and the worker (another process, connecting as the
application role, under row-level security) sees it. A unique Q_CLUSTER_PREFIX keeps the worker from taking
anyone else's tasks on a shared Redis, and ours from anyone else."""

from __future__ import annotations

import time

import pytest

from jobs import services
from jobs.models import Job
from tenants.context import tenant_context
from tests.jobs.worker_processes import DEADLINE_SECONDS, start_worker, stop_worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_the_demo_job_to_success(two_tenants, redis_broker, tmp_path):
    a, b = two_tenants
    log_path = tmp_path / "qcluster.log"
    worker = start_worker(redis_broker, log_path)
    try:
        with tenant_context(a.studio):
            job = services.enqueue_job(kind="demo.countdown", payload={"steps": 4, "delay": 0.2}, user=a.owner)
        give_up = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < give_up and worker.poll() is None:
            with tenant_context(a.studio):
                current = Job.objects.get(pk=job.pk)
            if current.is_terminal:
                break
            time.sleep(0.1)
        with tenant_context(a.studio):
            job = Job.objects.get(pk=job.pk)
    finally:
        stop_worker(worker)
    output = log_path.read_text(errors="replace")
    assert job.state == Job.State.SUCCEEDED, f"job {job.state!r}: {job.error!r}; worker output:\n{output[-4000:]}"
    assert (job.progress, job.attempts, job.result) == (100, 1, {"steps": 4})
    assert job.started_at <= job.finished_at
    assert "job_started" in output and "job_finished" in output
    with tenant_context(b.studio):
        assert not Job.objects.exists()  # nothing leaked into the other studio
