"""The embedded default, started the way `make run` does, for tests that need the real thing: a fresh SQLite
database in its own DATA_DIR, `migrate`, `demo_setup` (its printed login) and `manage.py runall` (the web server,
the default worker and the gpu worker as real processes, with the ORM broker).

    with embedded_site(tmp_path / "var") as site:
        site.base, site.email, site.password   # the demo studio is at f"{site.base}/s/demo/"
        site.shell("print(...)")                 # Python in the site's own settings (manage.py shell -c)
        site.server_errors(), site.job_states()  # what its log and database say
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_DEADLINE_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_env(data_dir: Path) -> dict[str, str]:
    """This environment without what would move the site off the embedded default (a database or broker URL,
    the test run's settings, Stripe keys, engine and intake overrides)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "Q_CLUSTER_NAME", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith(("STRIPE_", "ENGINE_", "INTAKE_", "PYTEST_"))
    }
    env.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


@dataclass
class EmbeddedSite:
    base: str
    email: str
    password: str
    data_dir: Path
    lines: list[str]

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def server_errors(self) -> list[str]:
        """Log lines of requests answered with a 5xx, and tracebacks."""
        return [line for line in self.lines if re.search(r"status=5\d\d\b", line) or "Traceback" in line]

    def job_states(self) -> dict[str, int]:
        with sqlite3.connect(self.data_dir / "db.sqlite3", timeout=30) as db:
            return dict(db.execute("SELECT state, count(*) FROM generation_job GROUP BY state").fetchall())

    def shell(self, code: str) -> str:
        """Run `code` with `manage.py shell -c` in the site's settings; its standard output."""
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=site_env(self.data_dir),
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        return done.stdout


@contextmanager
def embedded_site(data_dir: Path) -> Iterator[EmbeddedSite]:
    env = site_env(data_dir)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True, timeout=300)
    setup = subprocess.run([*manage, "demo_setup"], env=env, check=True, timeout=120, capture_output=True, text=True)
    email = re.search(r"Email:\s+(\S+)", setup.stdout)[1]
    password = re.search(r"Password:\s+(\S+)", setup.stdout)[1]
    port = _free_port()
    proc = subprocess.Popen(
        [*manage, "runall", "--noreload", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError("runall exited:\n" + "\n".join(lines))
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310 - local server
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the web server never answered:\n" + "\n".join(lines))
        time.sleep(0.3)
    try:
        yield EmbeddedSite(base, email, password, data_dir, lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
