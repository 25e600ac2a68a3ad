"""The studio's price sheet and its Stripe Connect onboarding (pages at /billing/prices/): owners and managers
edit prices and packages and connect the studio's payments account; the status shows until charges are enabled."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from billing import connect, prices, stripe_client
from billing import prints as print_service
from billing.models import Package, PrintProduct
from tenants.access import manager_required


def _prices_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("billing_prices"))


@manager_required
@require_http_methods(["GET", "HEAD", "POST"])
def price_sheet(request: HttpRequest) -> HttpResponse:
    """GET the price sheet, packages, print products and payments status; POST
    action=sheet|package|toggle|print_product|print_toggle|shipping."""
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "sheet":
                prices.update_price_sheet(
                    currency=request.POST.get("currency", ""), price_per_portrait=request.POST.get("price", "")
                )
                messages.success(request, _("Prices saved."))
            elif action == "package":
                count = request.POST.get("count", "")
                prices.add_package(
                    name=request.POST.get("name", ""),
                    count=int(count) if count.isdigit() else -1,
                    price=request.POST.get("price", ""),
                )
                messages.success(request, _("Package added."))
            elif action == "toggle":
                package = get_object_or_404(Package, pk=request.POST.get("package") or 0)
                prices.set_package_active(package=package, active=not package.is_active)
            elif action == "print_product":
                post = request.POST
                print_service.add_product(
                    name=post.get("name", ""),
                    kind=post.get("kind", ""),
                    finish=post.get("finish", ""),
                    width_mm=post.get("width_mm", ""),
                    height_mm=post.get("height_mm", ""),
                    crop_ratio=post.get("crop_ratio", ""),
                    min_dpi=post.get("min_dpi", ""),
                    price=post.get("price", ""),
                )
                messages.success(request, _("Print product added."))
            elif action == "print_toggle":
                product = get_object_or_404(PrintProduct, pk=request.POST.get("product") or 0)
                print_service.set_product_active(product=product, active=not product.is_active)
            elif action == "shipping":
                print_service.update_shipping(
                    print_shipping=request.POST.get("print_shipping", ""),
                    ship_to_countries=request.POST.get("ship_to_countries", ""),
                )
                messages.success(request, _("Shipping saved."))
            else:
                error = _("Unknown action.")
        except (prices.PriceError, print_service.PrintRefused) as exc:
            error = exc.message
        if not error:
            return redirect("billing_prices")
    row = connect.studio_billing()
    if request.GET.get("connect") == "return" and row.connect_account_id and not row.charges_enabled:
        row = connect.refresh_status()
    context = {
        "current": "billing_prices",
        "sheet": prices.price_sheet(),
        "packages": list(Package.objects.order_by("-is_active", "price", "id")),
        "print_products": list(PrintProduct.objects.order_by("-is_active", "price", "id")),
        "print_kinds": PrintProduct.Kind.choices,
        "default_ship_to": " ".join(print_service.DEFAULT_SHIP_TO),
        "currencies": prices.CURRENCIES,
        "billing": row,
        "fee_percent": prices.application_fee_percent(),
        "error": error,
        "stripe_ready": stripe_client.is_configured(),
        "stripe_hint": _(stripe_client.SETUP_HINT),
    }
    return render(request, "billing/prices/prices.html", context, status=400 if error else 200)


@manager_required
@require_POST
def connect_onboarding(request: HttpRequest) -> HttpResponse:
    """POST: the studio's payments account (created once), then Stripe's onboarding (an Account Link)."""
    url = _prices_url(request)
    try:
        link = connect.onboarding_link(
            studio=request.studio,  # type: ignore[attr-defined]
            return_url=f"{url}?connect=return",
            refresh_url=f"{url}?connect=refresh",
        )
    except connect.ConnectError as exc:
        messages.error(request, exc.message)
        return redirect("billing_prices")
    return redirect(link)
