"""Persistent database connections (the PostgreSQL default, CONN_MAX_AGE 60) never carry a studio from one
request to the next: a real gunicorn worker, as the application role with row-level security, serves two
studios' pages and the platform's in turn over the one connection it keeps, and each page shows its own studio's
clients only. The tenant lives in SET LOCAL, which ends with each request's transaction (tenants/rls.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client as DjangoClient

from clients.models import Client
from tenants.context import tenant_context
from tests.embedded_site import _free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "persistent-connections-test"


def _server_connections() -> list[tuple[int, object]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [APP_NAME, connection.settings_dict["NAME"]],
        )
        return cursor.fetchall()


@pytest.fixture
def gunicorn(tmp_path: Path) -> str:
    """One gunicorn sync worker on the test database as the application role, with the settings' own
    CONN_MAX_AGE (DATABASE_CONN_MAX_AGE unset); its connections are named APP_NAME in pg_stat_activity."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_CONN_MAX_AGE", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=url,
        DATA_DIR=str(tmp_path),
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        PGAPPNAME=APP_NAME,
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
    )
    port = _free_port()
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    proc = subprocess.Popen(
        [binary, "studio_saas.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "gunicorn exited"
            try:
                if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gunicorn never answered"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _session(user) -> dict[str, str]:  # noqa: ANN001
    browser = DjangoClient()
    browser.force_login(user)
    return {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value}


def test_a_kept_connection_carries_no_studio_from_one_request_to_the_next(two_tenants, gunicorn):
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 60  # the PostgreSQL default this test is about
    a, b = two_tenants
    for tenant, name in ((a, "Alice Only-in-A"), (b, "Bruno Only-in-B")):
        with tenant_context(tenant.studio):
            Client.objects.create(name=name, email=f"{name.split()[0].lower()}@mail.example")
    browsers = {
        key: httpx.Client(base_url=gunicorn, timeout=30, cookies=_session(tenant.owner))
        for key, tenant in (("a", a), ("b", b))
    }
    seen: list[tuple[str, int]] = []
    try:
        for _ in range(3):
            for key, tenant, own, other in (
                ("a", a, "Alice Only-in-A", "Bruno Only-in-B"),
                ("b", b, "Bruno Only-in-B", "Alice Only-in-A"),
            ):
                page = browsers[key].get(f"{tenant.prefix}/clients/")
                assert page.status_code == 200, page.text[:500]
                assert own in page.text and other not in page.text
                # This member's session on the other studio's address: refused, nothing of either studio shown.
                foreign = browsers[key].get(f"{(b if key == 'a' else a).prefix}/clients/")
                assert foreign.status_code in (302, 403, 404)
                assert own not in foreign.text and other not in foreign.text
                seen.append((key, len(_server_connections())))
            assert httpx.get(f"{gunicorn}/healthz").status_code == 200  # a platform request (no studio) between
    finally:
        for browser in browsers.values():
            browser.close()
    connections_used = _server_connections()
    # One connection served every request: the tenant really did cross requests on a kept connection.
    assert len(connections_used) == 1, connections_used
    assert all(count == 1 for _, count in seen), seen
