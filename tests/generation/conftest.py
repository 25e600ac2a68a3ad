"""Fixtures for the generation tests: the job system's enqueue recorder (tests/jobs/conftest.py) and its Redis
broker with a unique prefix (tests/jobs/brokers.py, for the real worker processes of test_scale_out.py)."""

from tests.jobs.brokers import redis_broker  # noqa: F401  (a fixture)
from tests.jobs.conftest import enqueued, test_kinds  # noqa: F401  (fixtures)
