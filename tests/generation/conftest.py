"""Fixtures for the generation tests: the job system's enqueue recorder (tests/jobs/conftest.py)."""

from tests.jobs.conftest import enqueued, test_kinds  # noqa: F401  (fixtures)
