"""The studio's orders (page at /billing/orders/): every member sees the clients' orders, newest first (with
`?needs=refund`, only those paid in the last 90 days that can't be downloaded: the dashboard links there); owners
and managers ask Stripe to refund a paid one (the `charge.refunded` webhook then marks it refunded and revokes its
downloads). Others: view only, 403 with a message on the POST."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from billing import orders as order_service
from billing import selectors, stripe_client
from billing.models import Order
from tenants.access import has_role, require_http_methods_of, studio_member_required
from tenants.models import MANAGING_ROLES

REFUND_FORBIDDEN = gettext_lazy("Only the studio's owners and managers can refund an order.")
REFUND_REQUESTED = gettext_lazy("Refund requested: the downloads stop when Stripe confirms it.")
STRIPE_UNREACHABLE = gettext_lazy(
    "Stripe could not be reached or refused the refund. Nothing changed; try again in a moment."
)
PER_PAGE = 50


def order_list() -> QuerySet[Order]:
    """The current studio's orders, newest first, with gallery, client and the number of portraits (one query)."""
    return (
        Order.objects.select_related("gallery__client")
        .annotate(portrait_count=Count("items"))
        .order_by("-created_at", "-id")
    )


def request_refund(order: Order) -> str:
    """Ask Stripe to refund `order` (paid only): the refund's id. Raises CheckoutRefused (409: not paid, already
    refunded; 502: Stripe failed)."""
    if order.status == Order.Status.REFUNDED:
        raise order_service.CheckoutRefused(_("This order is already refunded."), 409)
    if not stripe_client.is_configured():
        raise order_service.CheckoutRefused(_(stripe_client.SETUP_HINT), 503)
    stripe = stripe_client.client()
    try:
        return order_service.refund(order=order)
    except stripe.StripeError:
        raise order_service.CheckoutRefused(str(STRIPE_UNREACHABLE), 502) from None


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    orders = order_list()
    to_refund = request.GET.get("needs") == "refund"
    if to_refund:
        since = timezone.now() - selectors.ORDERS_LOOKBACK
        orders = orders.filter(pk__in=selectors.undeliverable_orders(since=since).values("pk"))
    page = Paginator(orders, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "current": "billing_orders",
        "page": page,
        "orders": list(page.object_list),
        "can_refund": has_role(request, MANAGING_ROLES),
        "error": error,
        "to_refund": to_refund,
    }
    return render(request, "billing/studio/orders.html", context, status=status)


@studio_member_required
@require_safe
def order_list_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _get_order(order_id: int) -> Order:
    return get_object_or_404(Order, pk=order_id)


@studio_member_required
@require_http_methods_of(_get_order, ["POST"])
def refund_order(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=order_id)  # another studio's order: 404 whatever the method
    if not has_role(request, MANAGING_ROLES):
        return _page(request, error=str(REFUND_FORBIDDEN), status=403)
    try:
        request_refund(order)
    except order_service.CheckoutRefused as exc:
        return _page(request, error=exc.message, status=exc.status)
    messages.success(request, REFUND_REQUESTED)
    return redirect("billing_orders")
