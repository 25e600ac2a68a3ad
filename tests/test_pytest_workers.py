"""`make test` runs the suite in several processes: each must have its own folders, queues and database
(tests/pytest_workers.py), or one's cleanup and workers would reach into the other's tests."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


@pytest.mark.skipif(not WORKER, reason="the suite runs in one process (PYTEST_WORKERS=0)")
def test_each_process_has_its_own_data_dir_queues_and_database(db):
    assert settings.DATA_DIR.name == f"xdist-{WORKER}"
    assert (
        settings.CACHES["workers"]["LOCATION"].startswith(str(settings.DATA_DIR))
        or "REDIS" in str(settings.CACHES["workers"]["BACKEND"]).upper()
    )
    assert settings.Q_CLUSTER["name"].endswith(f"-{WORKER}")
    prefix = settings.Q_CLUSTER["name"]
    assert settings.Q_QUEUES["default"] == prefix and settings.Q_QUEUES["gpu"] == f"{prefix}-gpu"
    if connection.vendor == "postgresql":
        assert str(os.getpid()) in connection.settings_dict["NAME"]
