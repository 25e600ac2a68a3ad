"""What each pytest-xdist worker (`make test` runs the suite in `PYTEST_WORKERS` processes) must have of its own,
set before Django reads its settings: this plugin is loaded with `-p` (pyproject's addopts), which pytest imports
before pytest-django configures Django.

- **DATA_DIR**: a folder per worker under the run's one, so the file cache the local processes share (the
  `workers` cache: django-q2's statistics and the workers' beacons, jobs/workers.py), the media folders and the
  SQLite database of one worker are never read or cleared by the other.
- **Q_CLUSTER_PREFIX**: the broker's queue names per worker, so a real worker process that a test starts never
  takes the other worker's tasks (the Redis broker tests add a random prefix of their own too).

The test database is already per process (tests/conftest.py, `django_db_modify_db_settings`: the pid in its
name), the default cache is in process memory, and every port is a free one picked at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker:
    _base = Path(os.environ.get("DATA_DIR") or Path(__file__).resolve().parent.parent / "var")
    _own = _base / f"xdist-{_worker}"
    _own.mkdir(parents=True, exist_ok=True)
    os.environ["DATA_DIR"] = str(_own)
    os.environ["Q_CLUSTER_PREFIX"] = f"{os.environ.get('Q_CLUSTER_PREFIX', 'default')}-{_worker}"
