"""Fixtures of the billing tests. The billing-half fixtures come first (localstripe, webhook signing, credits on);
the orders half may add its own below.

`localstripe` (PyPI) runs as a subprocess on a free loopback port for the session, its store kept in memory (its
default pickles to /tmp, shared with any other instance), and the real `stripe` library is pointed at it through
STRIPE_API_BASE. No call ever leaves the machine."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

WEBHOOK_SECRET = "whsec_test_platform"
CONNECT_WEBHOOK_SECRET = "whsec_test_connect"

_LOCALSTRIPE = """
import sys
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The base URL of a localstripe server on loopback, started once per session."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCALSTRIPE, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"localstripe did not start: {err[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def stripe_local(settings: Any, localstripe_url: str) -> str:
    """The settings that point the stripe library at localstripe (legacy plan items: localstripe has no prices)."""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_LEGACY_PLAN_ITEMS = True
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return localstripe_url


@pytest.fixture
def billing_settings(settings: Any) -> Any:
    """Credits enforced, the webhook secrets, Stripe unreachable unless a test asks for localstripe."""
    settings.BILLING_ENFORCE_CREDITS = True
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = CONNECT_WEBHOOK_SECRET
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing leaves the machine
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return settings


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for the payload, made with the stripe library's own scheme."""
    ts = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{ts}.{payload}", secret)
    return f"t={ts},{stripe.WebhookSignature.EXPECTED_SCHEME}={signature}"


def make_event(event_type: str, obj: dict[str, Any], *, event_id: str, created: int | None = None, **extra: Any) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "data": {"object": obj},
            **extra,
        }
    )


def post_event(client: Any, payload: str, *, secret: str = WEBHOOK_SECRET, path: str = "/stripe/webhook/") -> Any:
    return client.post(
        path, payload, content_type="application/json", headers={"Stripe-Signature": sign(payload, secret)}
    )


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Wrong coupon codes are counted per address in the cache (billing/views_gallery.py): each test starts with
    none, whatever the tests before it guessed from 127.0.0.1."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
