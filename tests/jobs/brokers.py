"""Pointing this test process's django-q2 at a Redis broker with a unique site prefix (tests only)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/9")


@dataclass
class RedisBroker:
    url: str
    prefix: str

    def client(self):  # noqa: ANN201
        import redis

        return redis.from_url(self.url)

    @property
    def gpu_queue(self) -> str:
        return f"{self.prefix}-gpu"

    def key(self, queue: str) -> str:
        return f"django_q:{queue}:q"


def redis_available(url: str = REDIS_TEST_URL) -> bool:
    try:
        import redis

        return bool(redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[RedisBroker]:  # noqa: ANN001
    """django_q's Conf (read once at import) switched to Redis with a fresh prefix; the site's default queue
    and gpu queue names follow the prefix (settings.Q_QUEUES). Keys under the prefix are deleted afterwards."""
    if not redis_available():
        pytest.skip(f"needs Redis at {REDIS_TEST_URL}")
    from django_q.conf import Conf

    prefix = f"test-jobs-{uuid.uuid4().hex[:10]}"
    for name, value in {
        "REDIS": REDIS_TEST_URL,
        "ORM": None,
        "PREFIX": prefix,
        "CLUSTER_NAME": prefix,
        "SYNC": False,
    }.items():
        monkeypatch.setattr(Conf, name, value)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "name": prefix, "redis": REDIS_TEST_URL}
    settings.Q_CLUSTER.pop("orm", None)
    broker = RedisBroker(url=REDIS_TEST_URL, prefix=prefix)
    settings.Q_QUEUES = {"default": prefix, "gpu": broker.gpu_queue}
    yield broker
    client = broker.client()
    for pattern in (f"django_q:{prefix}:*", f"django_q:{broker.gpu_queue}:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
