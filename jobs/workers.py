"""Which task workers are alive: a beacon from every django-q2 worker process, read by the pages.

A queued job must never wait without a word: when no worker of its cluster has been alive recently, the job,
double and run pages say so, with the command that starts one (`worker_status`).

Each worker process of a cluster (django-q2 sends `post_spawn` in the process it spawns) starts a daemon thread
that writes a beacon every BEACON_INTERVAL_SECONDS to the `workers` cache (Redis with REDIS_URL, else a file
cache under DATA_DIR shared by the local processes): one key per cluster that expires after BEACON_TTL_SECONDS,
and one that remembers when a worker of the cluster was last seen. The thread touches only the cache, never the
database, torch or CUDA. A busy worker keeps beaconing (the thread runs beside the job), so "alive" means the
process is there, and the job's own heartbeat says whether it progresses.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.core.cache import caches
from django.utils import timezone

from jobs.models import Job
from jobs.services import queue_name

log = structlog.get_logger("jobs.workers")

CACHE_ALIAS = "workers"
BEACON_INTERVAL_SECONDS = 10.0
BEACON_TTL_SECONDS = 35
ALIVE_KEY = "worker-beacon:alive:{cluster}"
LAST_SEEN_KEY = "worker-beacon:last:{cluster}"

#: The command that starts a worker of each cluster, as the pages show it.
START_COMMANDS = {
    Job.Cluster.DEFAULT: "python manage.py qcluster",
    Job.Cluster.GPU: "Q_CLUSTER_NAME=gpu python manage.py qcluster",
}

_started = threading.Event()


@dataclass(frozen=True)
class WorkerStatus:
    """What the pages need to know about a cluster's workers."""

    cluster: str
    alive: bool
    last_seen: datetime | None
    host: str = ""
    engine: bool = True  # whether the worker can import the engine (torch, diffusers); gpu cluster only

    @property
    def start_command(self) -> str:
        return START_COMMANDS.get(self.cluster, START_COMMANDS[Job.Cluster.DEFAULT])

    @property
    def label(self) -> str:
        return "GPU worker" if self.cluster == Job.Cluster.GPU else "task worker"


def _cache() -> Any:
    return caches[CACHE_ALIAS]


def current_cluster() -> str | None:
    """The job cluster this django-q2 process serves (from Q_CLUSTER_NAME), or None for an unknown one."""
    from django_q.conf import Conf

    name = Conf.CLUSTER_NAME
    for cluster in Job.Cluster.values:
        if name == queue_name(cluster):
            return str(cluster)
    return None


def engine_installed() -> bool:
    """Whether the engine's libraries can be imported here (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "diffusers", "peft"))


def record_beacon(cluster: str) -> None:
    """Say that a worker of `cluster` is alive now (one cache write per key)."""
    now = timezone.now()
    beacon = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": now.isoformat(),
        "engine": engine_installed() if cluster == Job.Cluster.GPU else True,
    }
    cache = _cache()
    cache.set(ALIVE_KEY.format(cluster=cluster), beacon, timeout=BEACON_TTL_SECONDS)
    cache.set(LAST_SEEN_KEY.format(cluster=cluster), beacon, timeout=None)


def worker_status(cluster: str) -> WorkerStatus:
    """Whether a worker of `cluster` has been alive in the last BEACON_TTL_SECONDS, and when one was last seen."""
    cache = _cache()
    try:
        alive = cache.get(ALIVE_KEY.format(cluster=cluster))
        last = alive or cache.get(LAST_SEEN_KEY.format(cluster=cluster))
    except Exception:  # a cache that can't be read: say nothing rather than fail the page
        log.warning("worker_beacon_unreadable", cluster=cluster, exc_info=True)
        return WorkerStatus(cluster=cluster, alive=True, last_seen=None)
    last_seen = None
    if last:
        try:
            last_seen = datetime.fromisoformat(last["at"])
        except (KeyError, TypeError, ValueError):
            last_seen = None
    return WorkerStatus(
        cluster=cluster,
        alive=bool(alive),
        last_seen=last_seen,
        host=str((last or {}).get("host", "")),
        engine=bool((alive or {}).get("engine", True)),
    )


def _beacon_loop(cluster: str, stop: threading.Event) -> None:
    while True:
        try:
            record_beacon(cluster)
        except Exception:  # the cache is down for a moment: try again at the next beat
            log.warning("worker_beacon_failed", cluster=cluster, exc_info=True)
        if stop.wait(BEACON_INTERVAL_SECONDS):
            return


def start_beacon(sender: Any = None, proc_name: str = "", **kwargs: Any) -> None:
    """django-q2 `post_spawn` receiver, in the new worker process: start this process's beacon thread (once)."""
    cluster = current_cluster()
    if cluster is None or _started.is_set():
        return
    _started.set()
    thread = threading.Thread(target=_beacon_loop, args=(cluster, threading.Event()), name="worker-beacon", daemon=True)
    thread.start()
    log.info("worker_beacon_started", cluster=cluster, proc_name=proc_name)
