"""The Likeness panel on a double's page: how many portraits are scored, their median likeness and the share that
looks like the client (likeness >= 50), from the portraits the page loads anyway (no query of its own)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import DigitalDouble, Portrait
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.factories import make_double

pytestmark = pytest.mark.django_db


def _panel(html: str) -> str:
    match = re.search(r'<section class="card" id="likeness".*?</section>', html, re.S)
    assert match, "no Likeness panel"
    return re.sub(r"\s+", " ", match.group(0))


def _add(double: DigitalDouble, likeness: list[float | None], *, pick: bool = False) -> None:
    for seed, value in enumerate(likeness):
        Portrait.objects.create(double=double, recipe={"seed": seed}, likeness=value, is_pick=pick)


def _page(client: Any, tenant: Tenant, double: DigitalDouble) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{tenant.prefix}/doubles/{double.pk}/")
    assert response.status_code == 200
    return response.content.decode(), len(queries.captured_queries)


def test_the_panel_shows_scored_median_and_share_above_the_line(client: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
        _add(double, [82.0, 55.0, None, 40.0])
        _add(double, [49.9, 71.0], pick=True)
    client.force_login(tenant_a.owner)
    panel = _panel(_page(client, tenant_a, double)[0])
    # scored: 82, 55, 40, 49.9, 71 -> median 55; at or above 50: 82, 55, 71
    assert 'id="likeness-scored">5 of 6' in panel and "the demo model draws noise" in panel
    assert 'id="likeness-median">55/100' in panel
    assert 'id="likeness-above">3 of 5 (60 %)' in panel
    assert 'id="likeness-picks">1 of 2 (50 %)' in panel  # 49.9 is below the line
    assert "Measured against the photos the double was trained on" in panel


def test_without_portraits_the_panel_says_so(client: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
    client.force_login(tenant_a.owner)
    panel = _panel(_page(client, tenant_a, double)[0])
    assert "No portraits yet." in panel and "likeness-median" not in panel


def test_nothing_scored_shows_dashes_and_no_picks_row(client: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
        _add(double, [None, None])
    client.force_login(tenant_a.owner)
    panel = _panel(_page(client, tenant_a, double)[0])
    assert 'id="likeness-scored">0 of 2' in panel
    assert 'id="likeness-median">—' in panel and 'id="likeness-above">—' in panel
    assert "likeness-picks" not in panel


def test_the_panel_costs_no_query_per_portrait(client: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
        _add(double, [60.0])
    client.force_login(tenant_a.owner)
    _page(client, tenant_a, double)  # the first request after logging in writes the session
    _, few = _page(client, tenant_a, double)
    with tenant_context(tenant_a.studio):
        _add(double, [70.0, None, 30.0, 90.0], pick=True)
    html, many = _page(client, tenant_a, double)
    assert 'id="likeness-scored">4 of 5' in _panel(html)
    assert many == few
