"""Billing's part of the studio dashboard (tenants.dashboard), registered from BillingConfig.ready(): the plan
badge, "This month" (sales and refunds in the studio's currency, GPU credits left and used), paid orders that can't
be downloaded ("Needs you now"), payments ("Recent activity").

Money figures (sales, refunds, what an order or a payment came to) are for the roles that may read the studio's
billing (billing.api.BILLING_READ_ROLES: owners and managers); the others see the GPU credits, as the billing page
shows them to every member, and the orders and payments without their amounts. Refunding is for owners and
managers."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import credits, selectors
from billing.api import BILLING_READ_ROLES
from billing.models import StudioBilling
from billing.plans import plan_label
from billing.selectors import Sales
from tenants.access import has_role
from tenants.dashboard import (
    ActionItem,
    Activity,
    Badge,
    NamedObject,
    Panel,
    age,
    count_and_oldest,
    register_action_items,
    register_activity,
    register_badge,
    register_panel,
)
from tenants.models import MANAGING_ROLES
from tenants.templatetags.studio_tags import money

NAMED = 3
REFUND_NEEDS = "refund"  # the orders page's filter: billing_orders?needs=refund


_UNREAD = object()


def billing_row(request: HttpRequest) -> StudioBilling | None:
    """The studio's billing row (plan, status, balance), read once per request for the badge and the panel."""
    row = getattr(request, "_dashboard_billing", _UNREAD)
    if row is _UNREAD:
        row = StudioBilling.objects.only("plan", "subscription_status", "balance").first()
        request._dashboard_billing = row  # type: ignore[attr-defined]
    return row  # type: ignore[return-value]


def plan_badge(request: HttpRequest) -> Badge:
    """The plan badge: the same words as the billing page, linked to it."""
    row = billing_row(request)
    label = plan_label(row.plan, row.subscription_status) if row else plan_label("")
    return Badge(label=label, url=reverse("billing"), tone="" if row and row.plan else "warn")


def sees_sales(request: HttpRequest) -> bool:
    return has_role(request, BILLING_READ_ROLES)


def month_panel(request: HttpRequest) -> Panel:
    """This month's sales and refunds (the studio's currency first, any other below it; for those who may read
    the billing: two queries) and GPU credits (one query besides the billing row the badge reads)."""
    since = selectors.month_start()
    row = billing_row(request)
    context = {
        "since": since,
        "balance": credits.balance(billing=row) if row is not None else 0,
        "used": credits.used_since(day=since.date()),
        "show_sales": sees_sales(request),
    }
    if context["show_sales"]:
        currency = selectors.studio_currency()
        sales = selectors.sales_since(since=since)
        main = next((s for s in sales if s.currency == currency), Sales(currency=currency))
        context.update(sales=main, other_sales=[s for s in sales if s is not main])
    return Panel(template="billing/_dashboard_month.html", context=context, order=20)


def _client_name(order: object) -> str:
    gallery = getattr(order, "gallery", None)
    return gallery.client.name if gallery is not None else _("An erased client")


def needs(request: HttpRequest) -> list[ActionItem]:
    """Paid orders that can't be downloaded (urgency 10: the client paid for nothing). One query."""
    since = timezone.now() - selectors.ORDERS_LOOKBACK
    orders = selectors.undeliverable_orders(since=since)
    count, oldest = count_and_oldest(orders, order_by=("paid_at", "id"), limit=NAMED)
    if not count:
        return []
    url = f"{reverse('billing_orders')}?needs={REFUND_NEEDS}"
    amounts = sees_sales(request)
    objects = tuple(
        NamedObject(
            label=_("Order #%(id)s: %(client)s") % {"id": order.pk, "client": _client_name(order)},
            url=url + f"#order-{order.pk}",
            detail=(
                _("%(amount)s, paid %(age)s ago")
                % {"amount": money(order.amount, order.currency), "age": age(order.paid_at)}
                if amounts
                else _("paid %(age)s ago") % {"age": age(order.paid_at)}
            ),
        )
        for order in oldest
    )
    return [
        ActionItem(
            key="billing.orders_to_refund",
            count=count,
            text=ngettext(
                "%(count)s paid order can't be downloaded: refund it, or grant the portraits again in the gallery.",
                "%(count)s paid orders can't be downloaded: refund them, or grant the portraits again in the gallery.",
                count,
            )
            % {"count": count},
            url=url,
            action=_("See the order") if count == 1 else _("See the orders"),
            urgency=10,
            objects=objects,
            note="" if has_role(request, MANAGING_ROLES) else _("Owners and managers can refund orders."),
        )
    ]


def activity(request: HttpRequest, limit: int) -> list[Activity]:
    """Orders paid (what they came to for those who may read the billing). One query."""
    orders_url = reverse("billing_orders")
    amounts = sees_sales(request)
    return [
        Activity(
            at=order.paid_at,
            text=_("%(client)s paid %(amount)s")
            % {"client": _client_name(order), "amount": money(order.amount, order.currency)}
            if amounts
            else _("%(client)s bought portraits") % {"client": _client_name(order)},
            url=f"{orders_url}#order-{order.pk}",
            label=_("Order"),
        )
        for order in selectors.recent_payments(limit=limit)
    ]


def register_dashboard() -> None:
    register_badge("billing.plan", plan_badge)
    register_panel("billing.month", month_panel)
    register_action_items("billing", needs)
    register_activity("billing", activity)
