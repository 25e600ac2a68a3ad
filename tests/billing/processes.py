"""Real processes on the test database, released at once: the billing tests' race harness (several Python
processes as the application role, row-level security on, each running a worker script that waits for a "go"
file before writing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database's URL as the connection's role (the application role)."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def run_released_together(worker: str, *, studio_id: int, processes: int, rounds: int, folder: Path) -> list[str]:
    """Start `processes` Pythons running `worker` (argv: studio id, number, rounds, folder), wait until each has
    written `folder/ready-<n>`, release them together with `folder/go`, and return their outputs; every process
    must exit 0 (asserted, with the tails of their outputs)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_OWNER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
        DATABASE_URL=database_url(),
        DATA_DIR=str(folder),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        BILLING_ENFORCE_CREDITS="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", worker, str(studio_id), str(n), str(rounds), str(folder)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.glob("ready-*"))) < processes:
            assert all(p.poll() is None for p in procs), [p.communicate()[0][-3000:] for p in procs if p.poll()]
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.05)
        (folder / "go").touch()
        outputs = [p.communicate(timeout=180)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * processes, [out[-3000:] for out in outputs]
    return outputs
