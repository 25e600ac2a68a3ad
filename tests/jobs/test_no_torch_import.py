"""CUDA must never be initialised in a worker's parent process: the task module and the registry (and every
registered job kind, imported by the app's ready()) must not import torch at module level.

The probe runs in a fresh interpreter with an import hook that records every attempt to import torch (or the
other heavy ML packages), whether or not they are installed here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys

HEAVY = {"torch", "diffusers", "transformers", "peft", "accelerate"}
attempts = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            attempts.append(name)
        return None

sys.meta_path.insert(0, Recorder())

import django
django.setup()
import jobs.tasks, jobs.registry, jobs.services, jobs.jobs
from jobs.registry import registered_kinds
assert "demo.countdown" in registered_kinds(), registered_kinds()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print("ATTEMPTS:" + ",".join(attempts + loaded))

# The hook itself works: a deliberate import is recorded.
try:
    import torch  # noqa: F401
except ImportError:
    pass
print("SELFTEST:" + ",".join(attempts[:1]))
"""


def test_importing_the_task_module_and_registry_does_not_import_torch():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studio_saas.settings"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in out.stdout.splitlines() if ":" in line}
    assert lines.get("ATTEMPTS") == "", out.stdout
    assert lines.get("SELFTEST") == "torch", out.stdout
