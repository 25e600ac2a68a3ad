"""The dashboard that runs the studio (issue 19, part 3): "Needs you now" (each app's action items through
tenants.dashboard), "This month" (billing), "Recent activity" (each app's latest events), the shortcuts. Its query
count is the same at 1 and at 1,000 clients, and a second studio's data never shows. The items of each app are
tested beside the app (tests/<app>/test_dashboard.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import Client
from tenants import dashboard
from tenants.context import tenant_context
from tenants.dashboard import ActionItem, Activity, NamedObject, Panel, count_and_oldest
from tenants.models import Role
from tests.conftest import add_member, expected_queries
from tests.tenants.dashboard_data import MIN_PHOTOS, action_items, activity, build_clients, dashboard_page

pytestmark = pytest.mark.django_db

ITEMS = [  # every "Needs you now" item, most urgent first
    "billing.orders_to_refund",
    "generation.doubles_failed",
    "galleries.runs_without_gallery",
    "generation.sets_ready_for_review",
    "galleries.favorites_not_bought",
    "galleries.never_opened",
    "clients.sets_waiting_for_photos",
]


@pytest.fixture(autouse=True)
def two_photos_train(settings):  # noqa: ANN001, ANN201
    settings.INTAKE_MIN_PHOTOS = MIN_PHOTOS


# --- The hooks ------------------------------------------------------------------------------------------------


@pytest.fixture
def hooks(monkeypatch):  # noqa: ANN001, ANN201
    """Empty registries for the test (the apps' providers come back after it)."""
    monkeypatch.setattr(dashboard, "_action_items", {})
    monkeypatch.setattr(dashboard, "_activity", {})
    monkeypatch.setattr(dashboard, "_panels", {})
    return dashboard


def test_action_items_keep_those_with_a_count_most_urgent_first(hooks) -> None:
    def item(key: str, count: int, urgency: int) -> ActionItem:
        return ActionItem(key=key, count=count, text=key, url="/", action="Go", urgency=urgency)

    hooks.register_action_items("a", lambda request: [item("later", 2, 60), item("none", 0, 1)])
    hooks.register_action_items("b", lambda request: [item("first", 1, 10), item("also-60", 5, 60)])
    keys = [i.key for i in hooks.action_items(HttpRequest())]
    assert keys == ["first", "also-60", "later"]  # ties by key; a zero count is left out


def test_an_item_says_how_many_objects_it_leaves_unnamed() -> None:
    named = (NamedObject("a"), NamedObject("b"))
    assert ActionItem(key="k", count=5, text="", url="", action="", objects=named).more == 3
    assert ActionItem(key="k", count=9, text="", url="", action="", objects=named, of=2).more == 0


def test_recent_activity_merges_the_providers_newest_first_up_to_the_limit(hooks) -> None:
    now = timezone.now()
    hooks.register_activity(
        "a", lambda request, limit: [Activity(at=now - timedelta(minutes=m), text=f"a{m}") for m in (1, 5)]
    )
    hooks.register_activity(
        "b", lambda request, limit: [Activity(at=now - timedelta(minutes=m), text=f"b{m}") for m in (2, 3)]
    )
    texts = [e.text for e in hooks.recent_activity(HttpRequest(), limit=3)]
    assert texts == ["a1", "b2", "b3"]


def test_panels_are_placed_by_their_order(hooks) -> None:
    hooks.register_panel("late", lambda request: Panel(template="late.html", order=90))
    hooks.register_panel("early", lambda request: Panel(template="early.html", order=5))
    hooks.register_panel("nothing", lambda request: None)
    assert [p.template for p in hooks.panels(HttpRequest())] == ["early.html", "late.html"]


def test_count_and_oldest_is_one_query_with_the_whole_count(tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        Client.objects.bulk_create([Client(name=f"Client {i}") for i in range(5)])
        with CaptureQueriesContext(connection) as queries:
            count, first = count_and_oldest(Client.objects.all(), order_by=("name",), limit=2)
        assert (count, [c.name for c in first]) == (5, ["Client 0", "Client 1"])
        assert count_and_oldest(Client.objects.filter(name="nobody"), order_by=("name",)) == (0, [])
    assert len([q for q in queries.captured_queries if "set_config" not in q["sql"]]) == 1


# --- The page -------------------------------------------------------------------------------------------------


def test_an_empty_studio_says_nothing_needs_it(client_a, tenant_a) -> None:
    body = dashboard_page(client_a, tenant_a)
    assert "Nothing needs you right now." in body
    assert action_items(body) == {}
    assert "Nothing has happened yet." in body
    assert '<dd class="stat-value" id="month-sales">€0.00</dd>' in body
    assert '<dd class="stat-value" id="month-credits">0</dd>' in body


def test_photography_comes_first_then_the_shortcuts_and_jobs(client_a, tenant_a) -> None:
    body = dashboard_page(client_a, tenant_a)
    order = [
        'id="needs-you-now"',
        'id="this-month"',
        'id="recent-activity"',
        'aria-label="Shortcuts"',
        'id="recent-jobs"',
    ]
    positions = [body.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert f'href="{tenant_a.prefix}/members/"' in body  # the members' shortcut is still there


def test_every_item_counts_names_the_oldest_and_links_where_staff_act(client_a, two_tenants) -> None:
    a, b = two_tenants
    build_clients(a, 4)
    build_clients(b, 2, prefix="Secret")
    body = dashboard_page(client_a, a)
    items = action_items(body)
    assert list(items) == ITEMS
    for key, html in items.items():
        assert ">4<" in html and "4 " in html, key  # the count, and the sentence that says it
        assert html.count('<li><a href="') == 3, key  # the three oldest, named and linked
        assert "and 1 more" in html, key
    assert "Client 0000" in items["clients.sets_waiting_for_photos"]
    assert f'href="{a.prefix}/billing/orders/?needs=refund"' in items["billing.orders_to_refund"]
    assert "Secret" not in body


def test_a_second_studio_never_shows(client_a, two_tenants) -> None:
    a, b = two_tenants
    build_clients(b, 3, prefix="Secret")
    body = dashboard_page(client_a, a)
    assert "Nothing needs you right now." in body and "Nothing has happened yet." in body
    assert "Secret" not in body
    assert '<dd class="stat-value" id="month-sales">€0.00</dd>' in body


def test_the_query_count_is_the_same_at_1_and_at_1000_clients(client_a, two_tenants) -> None:
    a, b = two_tenants
    build_clients(a, 1)
    build_clients(b, 5, prefix="Secret")
    url = f"{a.prefix}/"
    client_a.get(url)  # warm caches (content types, templates) so both counts are alike
    with CaptureQueriesContext(connection) as one:
        small = client_a.get(url).content.decode()
    build_clients(a, 999, start=1)
    with CaptureQueriesContext(connection) as thousand:
        big = client_a.get(url).content.decode()

    # 30 (28 on SQLite) for the work, the month and the activity, + 2 for the getting-started checklist (a client
    # yet? a published template yet?), shown while a step is left.
    assert len(one.captured_queries) == len(thousand.captured_queries) == expected_queries(postgresql=32, sqlite=30)
    small_items, big_items = action_items(small), action_items(big)
    assert list(small_items) == list(big_items) == ITEMS
    assert "1 photo set is waiting for the client&#x27;s photos" in small_items["clients.sets_waiting_for_photos"]
    assert "1000 photo sets are waiting for the client&#x27;s photos" in big_items["clients.sets_waiting_for_photos"]
    assert "1000 paid orders can&#x27;t be downloaded" in big_items["billing.orders_to_refund"]
    assert "1000 favorites in 1000 galleries" in big_items["galleries.favorites_not_bought"]
    assert len(activity(big)) == dashboard.ACTIVITY_SHOWN
    assert "Secret" not in small and "Secret" not in big
    assert '<dd class="stat-value" id="month-sales">€19,800.00</dd>' in big  # 2,000 paid orders of 9.90


def test_a_panel_refreshing_itself_gets_the_panels_only(client_a, tenant_a) -> None:
    """The recent jobs poll the dashboard with htmx while one runs (hx-select="#recent-jobs"): that request skips
    the studio's items and activity, which it would throw away."""
    build_clients(tenant_a, 1)
    url = f"{tenant_a.prefix}/"
    with CaptureQueriesContext(connection) as full:
        client_a.get(url)
    with CaptureQueriesContext(connection) as poll:
        body = client_a.get(url, headers={"HX-Request": "true", "HX-Target": "recent-jobs"}).content.decode()
    assert 'id="recent-jobs"' in body and 'id="needs-you-now"' not in body and 'id="recent-activity"' not in body
    assert len(poll.captured_queries) < len(full.captured_queries) - 10


# --- Roles ----------------------------------------------------------------------------------------------------


def test_a_photographer_sees_no_sales_figures_and_who_may_act(client, two_tenants) -> None:
    """The studio's billing is read by its owners and managers (billing.api.BILLING_READ_ROLES): a photographer
    sees the GPU credits (the billing page shows them to every member), not the sales, nor what an order or a
    payment came to. The items say who may act where the photographer may not, and a run links to its page rather
    than to a gallery form."""
    a, _ = two_tenants
    build_clients(a, 1)
    client.force_login(add_member(a, "photo@studio-a.example", Role.PHOTOGRAPHER))
    body = dashboard_page(client, a)
    items = action_items(body)
    assert 'id="month-sales"' not in body and 'id="month-refunds"' not in body and "EUR" not in body
    assert "Sales figures are for the studio's owners and managers." in body
    assert '<dd class="stat-value" id="month-credits">96</dd>' in body
    assert any("bought portraits" in entry for entry in activity(body))
    assert "Owners and managers can refund orders." in items["billing.orders_to_refund"]
    assert "Owners, managers and staff can train digital doubles." in items["generation.doubles_failed"]
    assert "Owners, managers and staff can make and send galleries." in items["galleries.never_opened"]
    assert "Owners, managers and staff can send an upload link." in items["clients.sets_waiting_for_photos"]
    runs = items["galleries.runs_without_gallery"]
    assert f"{a.prefix}/runs/" in runs and "/galleries/from-run/" not in runs


def test_staff_act_on_the_photography_and_not_on_refunds(client, two_tenants) -> None:
    a, _ = two_tenants
    build_clients(a, 1)
    client.force_login(add_member(a, "staff@studio-a.example", Role.STAFF))
    body = dashboard_page(client, a)
    items = action_items(body)
    assert 'id="month-sales"' not in body
    assert "Owners and managers can refund orders." in items["billing.orders_to_refund"]
    assert all("action-note" not in html for key, html in items.items() if key != "billing.orders_to_refund")
    assert f"{a.prefix}/galleries/from-run/" in items["galleries.runs_without_gallery"]


@pytest.mark.parametrize("role", [Role.OWNER, Role.MANAGER])
def test_owners_and_managers_see_the_sales_and_get_no_notes(client, two_tenants, role) -> None:
    a, _ = two_tenants
    build_clients(a, 1)
    client.force_login(add_member(a, f"another-{role}@studio-a.example", role))
    body = dashboard_page(client, a)
    assert '<dd class="stat-value" id="month-sales">€19.80</dd>' in body
    assert "€9.90, paid" in action_items(body)["billing.orders_to_refund"]
    assert any("paid €9.90" in entry for entry in activity(body))
    assert "action-note" not in "".join(action_items(body).values())
