"""Billing reads for the studio's dashboard (billing/dashboard.py) and the orders page's filter: this month's sales
and refunds, paid orders that can't be downloaded, the latest payments. Keyword-only, in the current tenant
context, each one query whatever the number of orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from billing.models import Order, OrderItem, PriceSheet
from galleries.models import Entitlement

#: How far back the dashboard looks for paid orders that can't be downloaded (orders, unlike open galleries, have no
#: end of life; the orders page's filter shows every one).
ORDERS_LOOKBACK = timedelta(days=90)


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current month in settings.TIME_ZONE (the days of the credit usage are that
    zone's: billing.models.usage_day)."""
    local = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def studio_currency() -> str:
    """The price sheet's currency, upper case ("EUR"; the default before the studio set its prices)."""
    code = PriceSheet.objects.values_list("currency", flat=True).first()
    return (code or PriceSheet._meta.get_field("currency").default).upper()


@dataclass(frozen=True)
class Sales:
    """One currency's orders since a time: paid (`total`, `orders`) and refunded (`refunded`, `refunds`)."""

    currency: str
    total: Decimal = Decimal("0")
    orders: int = 0
    refunded: Decimal = Decimal("0")
    refunds: int = 0


def sales_since(*, since: datetime) -> list[Sales]:
    """Orders paid and orders refunded since `since`, per currency (a studio's orders are in its price sheet's
    currency, unless it changed it), the currency with the most paid first. An order paid then refunded in the
    period counts in both. One query."""
    paid, refunded = Q(paid_at__gte=since), Q(refunded_at__gte=since)
    rows = (
        Order.objects.filter(paid | refunded)
        .order_by()
        .values("currency")
        .annotate(
            total=Sum("amount", filter=paid),
            orders=Count("pk", filter=paid),
            refunded=Sum("amount", filter=refunded),
            refunds=Count("pk", filter=refunded),
        )
    )
    out = [
        Sales(
            currency=row["currency"].upper(),
            total=row["total"] or Decimal("0"),
            orders=row["orders"],
            refunded=row["refunded"] or Decimal("0"),
            refunds=row["refunds"],
        )
        for row in rows
    ]
    return sorted(out, key=lambda sales: (-sales.total, sales.currency))


def undeliverable_orders(*, since: datetime | None = None) -> QuerySet[Order]:
    """Paid orders (not refunded) whose client can't download all they paid for: an item has no active
    entitlement of the order (its portrait was deleted, staff revoked it, or the gallery is gone with its
    erased client). Refund them, or grant the portraits again. With their gallery and client; with `since`, those
    paid since then (the index order_studio_paid)."""
    active = Entitlement.objects.filter(
        gallery=OuterRef(OuterRef("gallery")),
        source=Entitlement.Source.ORDER,
        order_ref=Cast(OuterRef(OuterRef("pk")), output_field=CharField()),
        portrait=OuterRef("portrait"),
        size=OuterRef("size"),
        revoked_at__isnull=True,
    )
    undelivered = OrderItem.objects.filter(order=OuterRef("pk")).exclude(Exists(active))
    orders = Order.objects.filter(status=Order.Status.PAID)
    if since is not None:
        orders = orders.filter(paid_at__gte=since)
    return (
        orders.filter(Q(gallery__isnull=True) | Exists(undelivered))
        .select_related("gallery__client")
        .only("id", "amount", "currency", "paid_at", "gallery__client__name")
    )


def recent_payments(*, limit: int) -> list[Order]:
    """The orders paid last (refunded since or not), with their gallery and client, newest first."""
    return list(
        Order.objects.filter(paid_at__isnull=False)
        .select_related("gallery__client")
        .only("id", "amount", "currency", "paid_at", "gallery__client__name")
        .order_by("-paid_at", "-id")[:limit]
    )
