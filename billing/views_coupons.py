"""The studio's coupons and gallery sales (page at /billing/coupons/, linked from the price sheet): every member
sees the codes, what each brought in, and the sales; owners and managers create codes and sales, deactivate a code
and end a sale. Others: read only, 403 with a message on a POST. Thin: the forms are billing.api_coupons' input
serializers, the actions billing.coupons."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from billing import coupons, prices
from billing.api_coupons import CouponInputSerializer, SaleInputSerializer, create_coupon_from, create_sale_from
from billing.models import Coupon, GallerySale, PrintProduct
from galleries.models import Gallery
from tenants.access import has_role, studio_member_required
from tenants.models import MANAGING_ROLES

FORBIDDEN = gettext_lazy("Only the studio's owners and managers can change its coupons and sales.")


def _errors(serializer: Any) -> str:
    return " ".join(str(message) for messages in serializer.errors.values() for message in messages)


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "current": "billing_prices",
        "reports": coupons.reports(),
        "sales": list(GallerySale.objects.select_related("gallery").order_by("-ends_at", "-id")),
        "galleries": list(Gallery.objects.filter(revoked_at__isnull=True).order_by("-id").values("pk", "title")[:200]),
        "products": list(PrintProduct.objects.filter(is_active=True).order_by("name").values("pk", "name")),
        "applies": Coupon.AppliesTo.choices,
        "sale_applies": GallerySale.AppliesTo.choices,
        "currency": prices.price_sheet().currency,
        "can_edit": has_role(request, MANAGING_ROLES),
        "now": timezone.now(),
        "error": error,
    }
    return render(request, "billing/studio/coupons.html", context, status=status)


def _form(request: HttpRequest) -> dict[str, Any]:
    """The POST as the input serializers take it (empty fields left out; products as a list)."""
    data: dict[str, Any] = {k: v for k, v in request.POST.items() if v != "" and k not in ("csrfmiddlewaretoken",)}
    data["product_ids"] = request.POST.getlist("product_ids")
    return data


@studio_member_required
@require_http_methods(["GET", "HEAD", "POST"])
def coupons_page(request: HttpRequest) -> HttpResponse:
    """GET the codes with their reports and the sales; POST action=coupon|deactivate|sale|end_sale."""
    if request.method != "POST":
        return _page(request)
    if not has_role(request, MANAGING_ROLES):
        return _page(request, error=str(FORBIDDEN), status=403)
    action = request.POST.get("action")
    try:
        if action == "coupon":
            form = CouponInputSerializer(data=_form(request))
            if not form.is_valid():
                return _page(request, error=_errors(form), status=400)
            create_coupon_from(form.validated_data)
        elif action == "deactivate":
            pk = request.POST.get("coupon", "")
            coupon = get_object_or_404(Coupon, pk=int(pk) if pk.isdigit() else 0)
            coupons.deactivate_coupon(coupon=coupon)
        elif action == "sale":
            form = SaleInputSerializer(data=_form(request))
            if not form.is_valid():
                return _page(request, error=_errors(form), status=400)
            create_sale_from(form.validated_data)
        elif action == "end_sale":
            pk = request.POST.get("sale", "")
            coupons.delete_sale(sale=get_object_or_404(GallerySale, pk=int(pk) if pk.isdigit() else 0))
        else:
            return _page(request, error=_("Unknown action."), status=400)
    except coupons.CouponRefused as exc:
        return _page(request, error=exc.message, status=exc.status)
    return redirect("billing_coupons")
