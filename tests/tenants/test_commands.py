"""Management commands: demo_setup (idempotent demo studio and login) and runall (web server, task worker and
gpu worker)."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tenants.context import tenant_context
from tenants.management.commands.runall import _group_alive
from tenants.models import Membership, Role, Studio, User

# --- demo_setup -----------------------------------------------------------------------------------------------


def _demo_setup(*args: str) -> dict[str, str]:
    out = io.StringIO()
    call_command("demo_setup", *args, stdout=out)
    text = out.getvalue()
    found = {key: re.search(rf"{key}:\s+(\S+)", text) for key in ("URL", "Email", "Password")}
    assert all(found.values()), text
    return {key: match.group(1) for key, match in found.items()}


@pytest.mark.django_db
def test_demo_setup_creates_the_studio_and_prints_a_working_login(two_tenants, client):
    printed = _demo_setup()
    assert printed["URL"] == "http://localhost:8000/s/demo/"
    studio = Studio.objects.get(slug="demo")
    assert studio.is_active
    user = User.objects.get(email=printed["Email"])
    assert user.check_password(printed["Password"])
    with tenant_context(studio):
        assert Membership.objects.get(user=user).role == Role.OWNER

    # The printed login works on the studio's sign-in page.
    response = client.post("/s/demo/accounts/login/", {"username": printed["Email"], "password": printed["Password"]})
    assert response.status_code == 302 and response["Location"] == "/s/demo/"


@pytest.mark.django_db
def test_demo_setup_is_idempotent_and_resets_the_password(two_tenants):
    first = _demo_setup()
    second = _demo_setup()
    assert first["Email"] == second["Email"]
    assert first["Password"] != second["Password"]
    assert Studio.objects.filter(slug="demo").count() == 1
    user = User.objects.get(email=second["Email"])
    assert user.check_password(second["Password"]) and not user.check_password(first["Password"])
    studio = Studio.objects.get(slug="demo")
    with tenant_context(studio):
        assert Membership.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_demo_setup_repairs_a_suspended_studio_and_a_demoted_owner(two_tenants):
    printed = _demo_setup()
    studio = Studio.objects.get(slug="demo")
    Studio.objects.filter(pk=studio.pk).update(status=Studio.Status.SUSPENDED)
    with tenant_context(studio):
        Membership.objects.filter(user__email=printed["Email"]).update(role=Role.STAFF)
    _demo_setup()
    studio.refresh_from_db()
    assert studio.is_active
    with tenant_context(studio):
        assert Membership.objects.get(user__email=printed["Email"]).role == Role.OWNER


# --- runall ---------------------------------------------------------------------------------------------------

STARTUP_DEADLINE_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sqlite_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL"}}
    env.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", Q_WORKERS="1", AXES_ENABLED="0")
    return env


@pytest.fixture(scope="module")
def sqlite_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("runall")
    subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "migrate", "--no-input", "-v", "0"],
        env=_sqlite_env(data_dir),
        check=True,
        timeout=300,
        capture_output=True,
    )
    return data_dir


class Runall:
    """`manage.py runall` in a subprocess, with its output collected by a thread."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "runall", "--port", str(self.port), *args],
            env=_sqlite_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def child_pids(self) -> dict[str, int]:
        return {
            m["name"]: int(m["pid"])
            for m in re.finditer(r"\[runall\] (?P<name>\w+) started \(pid (?P<pid>\d+)\)", self.output)
        }

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"runall exited early:\n{self.output}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local test server
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        pytest.fail(f"the web server never answered at {url}:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pgid in self.child_pids().values():
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def runall(sqlite_data_dir: Path) -> Iterator[type[Runall]]:
    started: list[Runall] = []

    def start(*args: str) -> Runall:
        instance = Runall(sqlite_data_dir, *args)
        started.append(instance)
        return instance

    yield start  # type: ignore[misc]
    for instance in started:
        instance.stop()


def test_runall_serves_and_stops_all_three_children_on_ctrl_c(runall):
    server = runall()
    server.wait_until_serving()
    pids = server.child_pids()
    assert set(pids) == {"web", "worker", "gpu"}, server.output
    assert "qcluster (Q_CLUSTER_NAME=gpu)" in server.output
    assert all(_group_alive(pid) for pid in pids.values())
    # Each cluster's worker process says it is alive, in the cache the processes share (jobs/workers.py).
    from django.core.cache.backends.filebased import FileBasedCache

    from jobs.workers import ALIVE_KEY, SLOT_KEY

    shared = FileBasedCache(str(server.data_dir / "cache" / "workers"), {})
    prefix = os.environ.get("Q_CLUSTER_PREFIX", "default")  # the site's queues: runall's environment is this one
    queues = {"default": prefix, "gpu": f"{prefix}-gpu"}
    keys = [ALIVE_KEY.format(queue=queue) for queue in queues.values()]
    keys += [SLOT_KEY.format(queue=queue, slot=0) for queue in queues.values()]  # each worker's own beacon
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline and not all(shared.get(key) for key in keys):
        time.sleep(0.5)
    assert all(shared.get(key) for key in keys), server.output
    assert shared.get(SLOT_KEY.format(queue=queues["gpu"], slot=0))["busy"] is False

    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=60) == 0, server.output
    server._reader.join(timeout=5)
    assert "SIGINT received; stopping." in server.output
    assert "[runall] stopped." in server.output
    # Every child, and their own children (the autoreloader's server, the cluster's workers), are gone.
    for name, pid in pids.items():
        assert not _group_alive(pid), f"{name} (pid {pid}) still running:\n{server.output}"
    assert "[web]" in server.output  # the children's output is forwarded with a prefix


def test_runall_stops_on_sigterm(runall):
    server = runall("--noreload")
    server.wait_until_serving()
    pids = server.child_pids()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0, server.output
    for pid in pids.values():
        assert not _group_alive(pid)


def test_runall_stops_the_web_server_when_the_worker_dies(runall):
    server = runall("--noreload")
    server.wait_until_serving()
    pids = server.child_pids()
    os.killpg(pids["worker"], signal.SIGKILL)
    assert server.proc.wait(timeout=60) != 0, server.output
    server._reader.join(timeout=5)
    assert "worker exited" in server.output
    assert not _group_alive(pids["web"]), server.output
    assert not _group_alive(pids["gpu"]), server.output


def test_runall_without_the_gpu_worker(runall):
    server = runall("--noreload", "--no-gpu-worker")
    server.wait_until_serving()
    assert set(server.child_pids()) == {"web", "worker"}, server.output
