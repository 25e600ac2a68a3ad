"""Real django-q2 worker processes (`manage.py qcluster`) for tests: on a Redis broker with the test's prefix, on
the test database (the test must be transactional, so the worker sees what it writes), each in its own process
group so that it can be stopped, or killed with SIGKILL, whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.jobs.brokers import RedisBroker

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 120  # a bound for a hung worker, not a timing assertion


def database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_worker(
    broker: RedisBroker, log_path: Path, *, prefix: str | None = None, gpu: bool = False, **extra_env: str
) -> subprocess.Popen:
    """A qcluster of the site `prefix` (the broker's by default): the default cluster, or with `gpu` the site's gpu
    cluster (started the documented way, Q_CLUSTER_NAME=gpu). Its output goes to `log_path`."""
    env = {k: v for k, v in os.environ.items() if k not in ("Q_CLUSTER_NAME", "DATABASE_OWNER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
        DATABASE_URL=database_url(),  # test_<name>, as the application role the suite runs as
        REDIS_URL=broker.url,
        Q_CLUSTER_PREFIX=prefix or broker.prefix,
        Q_WORKERS="1",
        Q_LOG_LEVEL="INFO",
        DATA_DIR=str(log_path.parent),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    if gpu:
        env["Q_CLUSTER_NAME"] = "gpu"
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped (or killed) together
    )


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # qcluster stops its own children
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of this worker's group still running
    if proc.poll() is None:
        proc.wait(timeout=10)


def kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL to the whole cluster (parent, pusher, workers, monitor) at once: nothing gets to clean up."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_for(condition: Callable[[], bool], *, worker: subprocess.Popen | None = None, what: str = "") -> None:
    """Poll `condition` until it holds; fail after DEADLINE_SECONDS or when the worker died."""
    give_up = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < give_up:
        if condition():
            return
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}) while waiting for {what}")
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")
