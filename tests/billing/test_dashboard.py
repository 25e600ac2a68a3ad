"""Billing's part of the dashboard (billing/dashboard.py): paid orders that can't be downloaded (and the orders
page's filter the item links to), "This month" (sales, refunds, GPU credits), payments as recent activity."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from billing.models import CreditEntry, CreditUsageDay, Order, OrderItem, PriceSheet
from billing.selectors import month_start
from clients.models import Client
from galleries.models import Entitlement, Gallery
from generation.models import Portrait
from tenants.context import tenant_context
from tests.galleries.factories import studio_double
from tests.tenants.dashboard_data import action_items, activity, dashboard_page

pytestmark = pytest.mark.django_db

REFUND = "billing.orders_to_refund"


def _order(tenant: Any, *, delivered: bool = True, amount: str = "9.90", **fields: Any) -> Order:
    """A paid order of one portrait in a gallery of "Anna Martin", with its entitlement (revoked unless
    `delivered`)."""
    double = studio_double(tenant, client=Client.objects.create(name="Anna Martin"))
    portrait = Portrait.objects.create(double=double, rank=1)
    gallery = Gallery.objects.create(client=double.client, title="Summer")
    values = {"status": Order.Status.PAID, "currency": "eur", "amount": Decimal(amount), "paid_at": timezone.now()}
    order = Order.objects.create(gallery=gallery, **{**values, **fields})
    OrderItem.objects.create(order=order, portrait=portrait, unit_price=order.amount)
    Entitlement.objects.create(
        gallery=gallery,
        portrait=portrait,
        source=Entitlement.Source.ORDER,
        order_ref=str(order.pk),
        revoked_at=None if delivered else timezone.now(),
    )
    return order


# --- Orders to refund -----------------------------------------------------------------------------------------


def test_a_paid_order_that_cant_be_downloaded_is_listed_first(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        order = _order(tenant_a, delivered=False)
    body = dashboard_page(client_a, tenant_a)
    items = action_items(body)
    assert next(iter(items)) == REFUND
    item = items[REFUND]
    url = f"{tenant_a.prefix}/billing/orders/?needs=refund"
    assert "1 paid order can&#x27;t be downloaded: refund it, or grant the portraits again in the gallery." in item
    assert f'<a href="{url}#order-{order.pk}">Order #{order.pk}: Anna Martin</a>' in item
    assert "€9.90, paid 0\xa0minutes ago" in item
    assert f'href="{url}">See the order</a>' in item
    assert 'class="action-count is-urgent"' in item


def test_an_erased_clients_paid_order_is_listed(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        order = _order(tenant_a)
        Order.objects.filter(pk=order.pk).update(gallery=None)  # the client's erasure keeps the order, anonymised
    assert f"Order #{order.pk}: An erased client" in action_items(dashboard_page(client_a, tenant_a))[REFUND]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"delivered": True}, id="delivered"),
        pytest.param({"delivered": False, "status": Order.Status.REFUNDED}, id="refunded"),
        pytest.param({"delivered": False, "status": Order.Status.PENDING, "paid_at": None}, id="not paid"),
        pytest.param({"delivered": False, "paid_at": timezone.now() - timedelta(days=91)}, id="paid 91 days ago"),
    ],
)
def test_an_order_with_nothing_to_do_is_not_listed(client_a, tenant_a, fields) -> None:
    with tenant_context(tenant_a.studio):
        _order(tenant_a, **fields)
    assert REFUND not in action_items(dashboard_page(client_a, tenant_a))


def test_the_orders_page_lists_only_those_to_refund_when_asked(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        stuck = _order(tenant_a, delivered=False)
        fine = _order(tenant_a)
    url = f"{tenant_a.prefix}/billing/orders/"
    body = client_a.get(url + "?needs=refund").content.decode()
    assert "Paid orders that can't be downloaded" in body
    assert f'id="order-{stuck.pk}"' in body and f'id="order-{fine.pk}"' not in body
    everything = client_a.get(url).content.decode()
    assert f'id="order-{stuck.pk}"' in everything and f'id="order-{fine.pk}"' in everything
    with tenant_context(tenant_a.studio):
        Order.objects.filter(pk=stuck.pk).update(status=Order.Status.REFUNDED)
    assert "Every paid order can be downloaded." in client_a.get(url + "?needs=refund").content.decode()


# --- This month -----------------------------------------------------------------------------------------------


def test_this_month_adds_up_sales_refunds_and_credits(client_a, tenant_a) -> None:
    start = month_start()
    last_month = start - timedelta(days=2)
    with tenant_context(tenant_a.studio):
        PriceSheet.objects.create(currency="chf")
        _order(tenant_a, amount="10.00", currency="chf")
        _order(tenant_a, amount="25.50", currency="chf", status=Order.Status.REFUNDED, refunded_at=timezone.now())
        _order(tenant_a, amount="99.00", currency="chf", paid_at=last_month)  # last month's
        _order(tenant_a, amount="5.00", currency="usd")  # before the studio changed its currency
        CreditEntry.objects.create(kind=CreditEntry.Kind.GRANT, amount=100, reference="grant")
        CreditEntry.objects.create(kind=CreditEntry.Kind.RESERVE, amount=-7)
        CreditUsageDay.objects.create(day=last_month.date(), used=40)  # last month's use
    body = dashboard_page(client_a, tenant_a)
    assert '<dd class="stat-value" id="month-sales">CHF35.50</dd>' in body
    assert "2 paid orders since 1" in body
    assert '<dd class="stat-value" id="month-refunds">CHF25.50</dd>' in body
    assert "1 order refunded" in body
    assert "Also in USD: $5.00 from 1 order." in body
    assert '<dd class="stat-value" id="month-credits">93</dd>' in body
    assert "7 used this month" in body


# --- Activity -------------------------------------------------------------------------------------------------


def test_payments_are_recent_activity(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        order = _order(tenant_a, amount="19.80", paid_at=timezone.now() + timedelta(minutes=1))
    entries = activity(dashboard_page(client_a, tenant_a))
    assert f'<a href="{tenant_a.prefix}/billing/orders/#order-{order.pk}">Anna Martin paid €19.80</a>' in entries[0]
