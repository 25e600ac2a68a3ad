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

from billing import fulfilment as fulfilment_service
from billing import orders as order_service
from billing import selectors, stripe_client
from billing.models import Order, PrintFulfilment
from tenants.access import has_role, require_http_methods_of, studio_member_required
from tenants.media import signed_media_url
from tenants.models import MANAGING_ROLES, Role

REFUND_FORBIDDEN = gettext_lazy("Only the studio's owners and managers can refund an order.")
REFUND_REQUESTED = gettext_lazy("Refund requested: the downloads stop when Stripe confirms it.")
STRIPE_UNREACHABLE = gettext_lazy(
    "Stripe could not be reached or refused the refund. Nothing changed; try again in a moment."
)
FULFIL_FORBIDDEN = gettext_lazy("Only the studio's owners, managers and staff can move a print order on.")
FULFILMENT_DONE = {
    PrintFulfilment.Status.IN_PRODUCTION: gettext_lazy("Marked in production: the client was told."),
    PrintFulfilment.Status.SHIPPED: gettext_lazy("Marked shipped: the client got the tracking number."),
    PrintFulfilment.Status.DELIVERED: gettext_lazy("Marked delivered: the client was told."),
    PrintFulfilment.Status.CANCELLED: gettext_lazy(
        "Print order cancelled: the client was told. Refund it if it was paid."
    ),
}
#: Who moves print orders on (in production, shipped, delivered) and downloads their print files.
FULFILMENT_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
PER_PAGE = 50


def order_list() -> QuerySet[Order]:
    """The current studio's orders, newest first, with gallery, client and the number of portraits (one query)."""
    return (
        Order.objects.select_related("gallery__client", "fulfilment", "coupon")
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


def _detail(request: HttpRequest, order: Order, *, error: str = "", status: int = 200) -> HttpResponse:
    items = list(order.items.select_related("portrait").order_by("id"))
    prints = [item for item in items if item.product_name]
    for item in prints:
        item.file_url = (  # type: ignore[attr-defined]
            signed_media_url(obj=item, field="print_file", request=request, download=True) if item.print_file else ""
        )
    fulfilment = PrintFulfilment.objects.filter(order=order).first()
    context = {
        "current": "billing_orders",
        "order": order,
        "downloads": [item for item in items if not item.product_name],
        "prints": prints,
        "fulfilment": fulfilment,
        "next_steps": fulfilment_service.NEXT[fulfilment.status] if fulfilment else (),
        "manual": fulfilment is not None and fulfilment_service.fulfiller(fulfilment.provider).manual,
        "can_fulfil": has_role(request, FULFILMENT_ROLES),
        "can_refund": has_role(request, MANAGING_ROLES),
        "error": error,
    }
    return render(request, "billing/studio/order.html", context, status=status)


@studio_member_required
@require_safe
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    """One order: what was bought, and for prints the files, the address and the fulfilment's steps."""
    return _detail(request, get_object_or_404(Order.objects.select_related("gallery__client", "coupon"), pk=order_id))


@studio_member_required
@require_http_methods_of(_get_order, ["POST"])
def order_fulfilment(request: HttpRequest, order_id: int) -> HttpResponse:
    """POST status=in_production|shipped|delivered|cancelled (shipped: carrier, tracking_number, tracking_url)."""
    order = get_object_or_404(Order.objects.select_related("gallery__client"), pk=order_id)
    if not has_role(request, FULFILMENT_ROLES):
        return _detail(request, order, error=str(FULFIL_FORBIDDEN), status=403)
    record = PrintFulfilment.objects.filter(order=order).first()
    if record is None:
        return _detail(request, order, error=_("This order has no print to send."), status=409)
    status = request.POST.get("status", "")
    try:
        fulfilment_service.advance(
            fulfilment=record,
            status=status,
            carrier=request.POST.get("carrier", ""),
            tracking_number=request.POST.get("tracking_number", ""),
            tracking_url=request.POST.get("tracking_url", ""),
        )
    except fulfilment_service.FulfilmentRefused as exc:
        return _detail(request, order, error=exc.message, status=exc.status)
    messages.success(request, FULFILMENT_DONE[status])
    return redirect("billing_order", order_id=order.pk)
