"""Run everything the main job needs, for the demo and for development: the web server, the default task worker
and a `gpu`-cluster worker.

- `web`: Django's development server (runserver).
- `worker`: the default django-q2 cluster (photo checks, emails, clean-up, the schedules: stale-job sweeper,
  reminders, retention).
- `gpu`: the `gpu` cluster (Q_CLUSTER_NAME=gpu): digital-double training and portrait rendering. One worker
  process; on a machine without CUDA it runs on the CPU (the demo model is sized for that). CUDA is only ever
  touched inside its worker process, never in this command or the cluster's parent.

Each runs as a child process in its own process group (so that their own children, the autoreloader's server
and the clusters' workers, are stopped with them). Their output is forwarded line by line with a prefix.
Ctrl-C (SIGINT) or SIGTERM stops all of them; so does any one exiting on its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

STOP_GRACE_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Start the web server (runserver), the default task worker and a gpu-cluster worker (qcluster); "
        "Ctrl-C stops all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Web server port (default 8000)")
        parser.add_argument("--host", default="0.0.0.0", help="Web server address (default 0.0.0.0)")  # noqa: S104
        parser.add_argument("--noreload", action="store_true", help="Run the web server without the autoreloader")
        parser.add_argument("--no-worker", action="store_true", help="Only the web server")
        parser.add_argument(
            "--no-gpu-worker",
            action="store_true",
            help="No gpu-cluster worker (when a GPU machine runs it elsewhere)",
        )

    def handle(
        self,
        *args: Any,
        port: int,
        host: str,
        noreload: bool,
        no_worker: bool,
        no_gpu_worker: bool,
        **options: Any,
    ) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        base_env = {k: v for k, v in os.environ.items() if k != "Q_CLUSTER_NAME"}
        base_env["PYTHONUNBUFFERED"] = "1"
        web_cmd = [sys.executable, manage, "runserver", f"{host}:{port}"]
        if noreload:
            web_cmd.append("--noreload")
        commands: dict[str, tuple[list[str], dict[str, str]]] = {"web": (web_cmd, base_env)}
        if not no_worker:
            commands["worker"] = ([sys.executable, manage, "qcluster"], base_env)
            if not no_gpu_worker:
                commands["gpu"] = ([sys.executable, manage, "qcluster"], {**base_env, "Q_CLUSTER_NAME": "gpu"})

        stop = threading.Event()
        received: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            received.append(signum)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        children: dict[str, subprocess.Popen[bytes]] = {}
        pumps: list[threading.Thread] = []
        exit_code = 0
        try:
            for name, (cmd, env) in commands.items():
                proc = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                children[name] = proc
                pump = threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True)
                pump.start()
                pumps.append(pump)
                cluster = f" (Q_CLUSTER_NAME={env['Q_CLUSTER_NAME']})" if "Q_CLUSTER_NAME" in env else ""
                self.stdout.write(f"[runall] {name} started (pid {proc.pid}): {' '.join(cmd[1:])}{cluster}")
            self.stdout.write(f"[runall] http://localhost:{port}/ — press Ctrl-C to stop them all.")

            while not stop.is_set():
                exited = [(n, p.returncode) for n, p in children.items() if p.poll() is not None]
                if exited:
                    name, code = exited[0]
                    self.stdout.write(f"[runall] {name} exited with status {code}; stopping the others.")
                    exit_code = code or 1
                    break
                stop.wait(0.2)
            if received:
                self.stdout.write(f"[runall] {signal.Signals(received[0]).name} received; stopping.")
        finally:
            self._stop_all(children)
            for pump in pumps:
                pump.join(timeout=2)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("[runall] stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _pump(self, name: str, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout.write(f"[{name}] {line}")
        stream.close()

    def _stop_all(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        """SIGINT to each child's process group, SIGKILL to whatever is still there after the grace time."""
        for proc in children.values():
            _signal_group(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stdout.write(f"[runall] {name} did not stop in time; killing it.")
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # The children's own children (the autoreloader's server, the cluster's workers) go with their group.
        while time.monotonic() < deadline and any(_group_alive(p.pid) for p in children.values()):
            time.sleep(0.1)
        for proc in children.values():
            if _group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the process group."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name "(...)": state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
