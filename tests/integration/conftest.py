"""Fixtures of the integration tests, from the apps' test folders."""

from tests.billing.test_outgoing_webhooks import receiver  # noqa: F401
from tests.generation.runs_support import run_settings_fixture, tiny_engine_fixture  # noqa: F401
from tests.jobs.conftest import enqueued  # noqa: F401
