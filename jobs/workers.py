"""Which task workers are alive: a beacon from every django-q2 worker process, read by the pages.

A queued job must never wait without a word: when no worker of its cluster has been alive recently, the job,
double and run pages say so, with the command that starts one (`worker_status`).

Each worker process of a cluster (django-q2 sends `post_spawn` in the process it spawns) starts a daemon thread
that writes a beacon every BEACON_INTERVAL_SECONDS to the `workers` cache (Redis with REDIS_URL, else a file
cache under DATA_DIR shared by the local processes): one key per cluster (named by its queue, so two sites on one
Redis never see each other's workers) that expires after BEACON_TTL_SECONDS,
and one that remembers when a worker of the cluster was last seen. The thread touches only the cache, never the
database, torch or CUDA. A busy worker keeps beaconing (the thread runs beside the job), so "alive" means the
process is there, and the job's own heartbeat says whether it progresses.

Each worker also keeps a beacon of its own (`WorkerBeacon`: host and pid, busy or idle, and what the apps' state
hooks report, e.g. generation's base models loaded in its pipeline cache) in a slot of its cluster. It is
written at every beat and at once when the worker claims a job and when the job ends (`mark_busy`/`mark_idle`), so
a claim can prefer an idle worker that has the job's model loaded (jobs/affinity.py) and the operator's page can
show each worker.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.core.cache import caches
from django.utils import timezone
from django.utils.translation import gettext as _

from jobs.models import Job
from jobs.services import queue_name

log = structlog.get_logger("jobs.workers")

CACHE_ALIAS = "workers"
BEACON_INTERVAL_SECONDS = 10.0
BEACON_TTL_SECONDS = 35
ALIVE_KEY = "worker-beacon:alive:{queue}"
LAST_SEEN_KEY = "worker-beacon:last:{queue}"
# A worker's own beacon and its cluster's index, under the cluster's queue (the site's prefix in it), so sites
# sharing a Redis never see each other's workers.
SLOT_KEY = "worker-beacon:slot:{queue}:{slot}"
#: Beacon slots per cluster: a worker beyond them runs its jobs but isn't listed (and gets no model affinity).
MAX_WORKERS_PER_CLUSTER = 64

#: The command that starts a worker of each cluster, as the pages show it.
START_COMMANDS = {
    Job.Cluster.DEFAULT: "python manage.py qcluster",
    Job.Cluster.GPU: "Q_CLUSTER_NAME=gpu python manage.py qcluster",
}

_started = threading.Event()
_cluster: list[str] = []  # the cluster this process's beacon serves, once started
_state_lock = threading.Lock()
_record_lock = threading.Lock()  # the beacon thread and the job's thread both write this worker's beacon
_slot: list[int] = []  # this worker's beacon slot, once it took one
_state: dict[str, Any] = {"busy": False, "job_id": None, "since": None}
#: Functions an app registers in ready() (jobs can't import the apps above it) that say what this worker holds,
#: e.g. {"loaded": ["sd15"], "loads": 2}; called in the beacon thread, so they must be quick and never load
#: anything themselves.
_state_hooks: list[Callable[[], Mapping[str, Any]]] = []


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
        return _("GPU worker") if self.cluster == Job.Cluster.GPU else _("task worker")


@dataclass(frozen=True)
class WorkerBeacon:
    """One worker process as its own beacon last said: idle or busy (with which job), and what it holds."""

    worker: str  # "host:pid"
    cluster: str
    host: str
    pid: int
    at: datetime
    busy: bool
    job_id: int | None = None
    since: datetime | None = None  # when it became busy or idle
    loaded: tuple[str, ...] = ()  # base models in its pipeline cache (generation's hook)
    loads: int = 0  # cold loads since it started
    extra: dict[str, Any] = field(default_factory=dict)


def beacon_cache() -> Any:
    """The cache the processes of a site share their beacons in (settings.CACHES["workers"])."""
    return caches[CACHE_ALIAS]


def register_worker_state_hook(hook: Callable[[], Mapping[str, Any]]) -> None:
    """Add what `hook()` returns to this process's worker beacon (called by apps in ready(); idempotent)."""
    if hook not in _state_hooks:
        _state_hooks.append(hook)


def worker_id() -> str:
    """This process as the beacons name it: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_worker() -> bool:
    """Whether this process is a django-q2 worker whose beacon runs (not a web process, not a test's job runner)."""
    return _started.is_set()


def held_here() -> dict[str, Any]:
    """What this process's state hooks report now (e.g. {"loaded": [...], "loads": 2}); {} without hooks."""
    state: dict[str, Any] = {}
    for hook in _state_hooks:
        try:
            state.update(hook() or {})
        except Exception:  # a hook that fails leaves the beacon as it is, never the worker
            log.warning("worker_state_hook_failed", hook=getattr(hook, "__name__", str(hook)), exc_info=True)
    return state


def record_worker(cluster: str) -> None:
    """Write this worker's own beacon (busy or idle, and the hooks' state) into its slot of the cluster.

    A worker takes the first free slot with the cache's atomic `add` (two workers starting together never take
    the same one) and then rewrites it at every beat; a slot left to expire (the worker stopped, or stalled for
    longer than BEACON_TTL_SECONDS and someone else took it) is taken afresh. Readers get every slot in one
    round trip (`live_workers`)."""
    with _record_lock:
        with _state_lock:
            state = dict(_state)
        me = worker_id()
        beacon = {
            "worker": me,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "at": timezone.now().isoformat(),
            **state,
            **held_here(),
        }
        cache = beacon_cache()
        queue = queue_name(cluster)
        slot = _slot[0] if _slot else None
        if slot is not None:
            current = cache.get(SLOT_KEY.format(queue=queue, slot=slot))
            if current is None or (isinstance(current, dict) and current.get("worker") == me):
                cache.set(SLOT_KEY.format(queue=queue, slot=slot), beacon, timeout=BEACON_TTL_SECONDS)
                return
        for slot in range(MAX_WORKERS_PER_CLUSTER):
            if cache.add(SLOT_KEY.format(queue=queue, slot=slot), beacon, timeout=BEACON_TTL_SECONDS):
                _slot[:] = [slot]
                return
        _slot.clear()
        log.warning("worker_slots_full", cluster=cluster, slots=MAX_WORKERS_PER_CLUSTER)


def _set_state(busy: bool, job_id: int | None) -> None:
    with _state_lock:
        _state.update(busy=busy, job_id=job_id, since=timezone.now().isoformat())
    if not (_started.is_set() and _cluster):
        return
    try:
        record_worker(_cluster[0])
    except Exception:  # the cache is down for a moment: the next beat says it
        log.warning("worker_beacon_failed", cluster=_cluster[0], exc_info=True)


def mark_busy(job_id: int) -> None:
    """This worker claimed `job_id`: its beacon says so at once (only in a beaconing worker)."""
    _set_state(True, job_id)


def mark_idle() -> None:
    """This worker's job ended: its beacon says idle at once, with what it now holds (e.g. a model just loaded)."""
    _set_state(False, None)


def live_workers(cluster: str) -> list[WorkerBeacon]:
    """The workers of `cluster` whose own beacon is fresh, in slot order; [] when the cache can't say."""
    queue = queue_name(cluster)
    keys = [SLOT_KEY.format(queue=queue, slot=slot) for slot in range(MAX_WORKERS_PER_CLUSTER)]
    try:
        found = beacon_cache().get_many(keys)
    except Exception:
        log.warning("worker_beacon_unreadable", cluster=cluster, exc_info=True)
        return []
    workers = []
    for key in keys:
        raw = found.get(key)
        if not isinstance(raw, dict):
            continue
        try:
            workers.append(_beacon_of(cluster, raw))
        except (KeyError, TypeError, ValueError):
            continue
    return workers


def _beacon_of(cluster: str, raw: Mapping[str, Any]) -> WorkerBeacon:
    known = {"worker", "host", "pid", "at", "busy", "job_id", "since", "loaded", "loads", "engine"}
    since = raw.get("since")
    return WorkerBeacon(
        worker=str(raw["worker"]),
        cluster=cluster,
        host=str(raw.get("host", "")),
        pid=int(raw.get("pid") or 0),
        at=datetime.fromisoformat(str(raw["at"])),
        busy=bool(raw.get("busy")),
        job_id=raw.get("job_id"),
        since=datetime.fromisoformat(str(since)) if since else None,
        loaded=tuple(str(name) for name in raw.get("loaded") or ()),
        loads=int(raw.get("loads") or 0),
        extra={key: value for key, value in raw.items() if key not in known},
    )


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
    cache = beacon_cache()
    cache.set(ALIVE_KEY.format(queue=queue_name(cluster)), beacon, timeout=BEACON_TTL_SECONDS)
    cache.set(LAST_SEEN_KEY.format(queue=queue_name(cluster)), beacon, timeout=None)
    if _started.is_set():
        record_worker(cluster)


def worker_status(cluster: str) -> WorkerStatus:
    """Whether a worker of `cluster` has been alive in the last BEACON_TTL_SECONDS, and when one was last seen."""
    cache = beacon_cache()
    try:
        alive = cache.get(ALIVE_KEY.format(queue=queue_name(cluster)))
        last = alive or cache.get(LAST_SEEN_KEY.format(queue=queue_name(cluster)))
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
    _cluster[:] = [cluster]
    _started.set()
    thread = threading.Thread(target=_beacon_loop, args=(cluster, threading.Event()), name="worker-beacon", daemon=True)
    thread.start()
    log.info("worker_beacon_started", cluster=cluster, proc_name=proc_name)
