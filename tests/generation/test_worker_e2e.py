"""End to end with a REAL django-q2 worker (`manage.py qcluster`) on the Redis broker and the test database.

The test is transactional, so what it writes is committed and the worker (another process, connecting as the
application role, under row-level security) sees it. A unique Q_CLUSTER_PREFIX keeps the worker from taking
anyone else's tasks on a shared Redis, and ours from anyone else."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from generation import services
from generation.models import Job
from tenants.context import tenant_context
from tests.generation.brokers import RedisBroker

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 120  # a bound for a hung worker, not a timing assertion

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _start_worker(broker: RedisBroker, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("Q_CLUSTER_NAME", "DATABASE_OWNER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
        DATABASE_URL=_database_url(),  # test_<name>, as the application role the suite runs as
        REDIS_URL=broker.url,
        Q_CLUSTER_PREFIX=broker.prefix,
        Q_WORKERS="1",
        Q_LOG_LEVEL="INFO",
        DATA_DIR=str(log_path.parent),
        PYTHONUNBUFFERED="1",
    )
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped together below
    )


def _stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # qcluster stops its own children
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of this worker's group still running
    if proc.poll() is None:
        proc.wait(timeout=10)


def test_a_real_worker_runs_the_demo_job_to_success(two_tenants, redis_broker, tmp_path):
    a, b = two_tenants
    log_path = tmp_path / "qcluster.log"
    worker = _start_worker(redis_broker, log_path)
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
        _stop_worker(worker)
    output = log_path.read_text(errors="replace")
    assert job.state == Job.State.SUCCEEDED, f"job {job.state!r}: {job.error!r}; worker output:\n{output[-4000:]}"
    assert (job.progress, job.attempts, job.result) == (100, 1, {"steps": 4})
    assert job.started_at <= job.finished_at
    assert "job_started" in output and "job_finished" in output
    with tenant_context(b.studio):
        assert not Job.objects.exists()  # nothing leaked into the other studio
