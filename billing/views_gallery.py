"""Buying in a client's gallery (pages under /g/<gallery_token>/buy/): the cart posts here, the client goes to
Stripe's hosted checkout, and comes back to the success page, which shows the downloads as soon as the order is
paid (the webhook may arrive after the client does: the page polls with htmx while the order is pending).

Thin views on billing/orders.py; the gallery is resolved and its password checked by galleries' own decorator."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import connect, coupons, orders, prices
from billing import prints as print_service
from billing.models import Order, Package, PrintProduct
from engine import prints as engine_prints
from galleries import access, client_services
from galleries.models import Entitlement, Gallery
from galleries.views_public import gallery_page
from tenants import ratelimits
from tenants.refusals import refusal_page
from tenants.templatetags.studio_tags import money

POLL_SECONDS = 2
COUPON_GUESS_GROUP = "billing.coupon_guess"


def _coupon_guesses(request: HttpRequest, *, wrong: bool = False) -> None:
    """Guessing codes: an address that typed COUPON_GUESS_RATE wrong codes ("20/1h") has every code refused (429)
    until the window ends; `wrong` counts one more (django-ratelimit's counter, tenants.ratelimits)."""
    rate = ratelimits.rate_setting("COUPON_GUESS_RATE", "20/1h")
    bucket = ratelimits.address_bucket(request)
    used = ratelimits.usage(request, COUPON_GUESS_GROUP, bucket, rate, increment=wrong)
    if not wrong and used is not None and used["limit"] and used["count"] >= used["limit"]:
        minutes = max(1, -(-int(used["time_left"]) // 60))
        raise coupons.CouponRefused(
            ngettext(
                "Too many codes were tried from here. Try again in %(minutes)d minute.",
                "Too many codes were tried from here. Try again in %(minutes)d minutes.",
                minutes,
            )
            % {"minutes": minutes},
            429,
        )


def _with_coupon(request: HttpRequest, code: str, action: Any) -> Any:
    """Run `action` (a checkout or a code check) under the guessing limit when a code was typed; an unknown code
    counts as a wrong guess."""
    if not code.strip():
        return action()
    _coupon_guesses(request)
    try:
        return action()
    except coupons.CouponRefused as exc:
        if exc.status == 404:
            _coupon_guesses(request, wrong=True)
        raise


def _session_hash(request: HttpRequest) -> str:
    key = request.session.session_key or ""
    return hashlib.sha256(key.encode()).hexdigest() if key else ""


def _refused(request: HttpRequest, gallery: Gallery, message: str, status: int) -> HttpResponse:
    exc = orders.CheckoutRefused(message, status)
    return refusal_page(request, exc, template="galleries/public/refused.html", context={"gallery": gallery})


def _checkout(request: HttpRequest, gallery: Gallery, **choice: Any) -> HttpResponse:
    """The order of `choice` (downloads or prints) with the posted coupon, then Stripe's checkout page (303); a
    refusal is the gallery's refusal page."""
    code = request.POST.get("coupon", "")[:100]
    try:
        order = _with_coupon(
            request,
            code,
            lambda: orders.start_checkout(
                gallery=gallery,
                base_url=f"{request.scheme}://{request.get_host()}",
                session_hash=_session_hash(request),
                coupon_code=code,
                **choice,
            ),
        )
    except (orders.CheckoutRefused, coupons.CouponRefused) as exc:
        return _refused(request, gallery, exc.message, exc.status)
    response = HttpResponseRedirect(order.checkout_url)  # type: ignore[attr-defined]
    response.status_code = 303
    return response


@gallery_page("POST")
def gallery_buy(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """POST portrait=<id> (repeated), optionally package=<id> and coupon=<code>: the order, then Stripe's checkout
    page (303)."""
    package = None
    package_id = request.POST.get("package") or ""
    if package_id:
        package = Package.objects.filter(pk=int(package_id) if package_id.isdigit() else 0, is_active=True).first()
        if package is None:
            return _refused(request, gallery, _("This package is no longer offered."), 404)
    return _checkout(request, gallery, portrait_ids=request.POST.getlist("portrait"), package=package)


def _print_choice(data: Any) -> print_service.PrintChoice:
    return print_service.PrintChoice(
        portrait_id=data.get("portrait"),
        product_id=data.get("product"),
        zoom=data.get("zoom", 1),
        x=data.get("x", 0.5),
        y=data.get("y", 0.5),
        quantity=data.get("quantity", 1),
    )


@gallery_page("GET")
def gallery_print(request: HttpRequest, gallery: Gallery, portrait_id: int) -> HttpResponse:
    """The print page of a portrait: the products it has the pixels for, and for the one chosen (?product=) the
    crop framed on the watermarked preview (zoom and position, in the query: the page works without script; the
    script moves the frame live), the copies and the price. "Order" posts to `gallery_buy_print`."""
    try:
        entry = client_services.get_entry(gallery=gallery, portrait_id=portrait_id)
    except client_services.ClientActionError as exc:
        return _refused(request, gallery, exc.message, exc.status)
    if not connect.can_take_payments():
        message = _("The studio can't take orders online yet. Contact the studio to order a print.")
        return _refused(request, gallery, message, 409)
    order_ = client_services.gallery_order(gallery=gallery).portrait_ids
    tile = client_services.tiles(
        gallery=gallery, entries=[entry], entitlements={}, start=order_.index(entry.portrait_id) + 1
    )[0]
    size = print_service.portrait_size(entry.portrait)
    offers = print_service.offers_for(size=size)
    wanted = request.GET.get("product", "")
    chosen = next((o for o in offers if str(o.product.pk) == wanted), offers[0] if offers else None)
    sale = coupons.running_sale(gallery=gallery, kind=coupons.PRINT) if offers else None
    for offer in offers:  # the prices shown are the prices charged (a running sale's)
        offer.product.sale_price = coupons.sale_price(price=offer.product.price, sale=sale)  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "gallery": gallery,
        "tile": tile,
        "offers": offers,
        "chosen": chosen,
        "size": size,
        "sale": sale,
    }
    if chosen is not None:

        def number(key: str, default: float, low: float, high: float) -> float:
            try:
                value = float(request.GET.get(key, default))
            except ValueError:
                return default
            return min(high, max(low, value)) if value == value else default

        zoom = number("zoom", 1, 1, chosen.max_zoom)
        x, y = number("x", 0.5, 0, 1), number("y", 0.5, 0, 1)
        quantity = int(number("quantity", 1, 1, print_service.MAX_QUANTITY))
        crop = engine_prints.crop_for(size, chosen.sheet, zoom=zoom, x=x, y=y)
        sheet = prices.price_sheet()
        context.update(
            zoom=zoom,
            x=x,
            y=y,
            quantity=quantity,
            crop=crop,
            box=[
                round(v, 2)
                for v in (crop.x * tile.width, crop.y * tile.height, crop.w * tile.width, crop.h * tile.height)
            ],
            dpi=round(engine_prints.dpi_of(size, crop, chosen.sheet)),
            sheet=sheet,
            unit_price=chosen.product.sale_price,  # type: ignore[attr-defined]
            total=chosen.product.sale_price * quantity + sheet.print_shipping,  # type: ignore[attr-defined]
            max_quantity=print_service.MAX_QUANTITY,
        )
    return render(request, "billing/gallery/print.html", context)


@gallery_page("POST")
def gallery_buy_print(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """POST portrait, product, zoom, x, y, quantity and optionally coupon: the print order, then Stripe's checkout
    page (303), which asks for the shipping address."""
    return _checkout(request, gallery, prints=[_print_choice(request.POST)])


def _coupon_lines(request: HttpRequest, gallery: Gallery) -> tuple[list[coupons.Line], str, Decimal]:
    """The cart the coupon check is about: a print (?product=&quantity=) at its sale price, with the shipping; or
    the portraits ticked (?count=) or a package (?package=), at the sale's prices. Raises PriceError."""
    sheet = prices.price_sheet()
    product_id = request.GET.get("product", "")
    if product_id:
        product = PrintProduct.objects.filter(pk=int(product_id) if product_id.isdigit() else 0, is_active=True).first()
        if product is None:
            raise prices.PriceError(_("This print is no longer offered. Choose another one."), 404)
        quantity = request.GET.get("quantity", "1")
        copies = min(max(int(quantity), 1), print_service.MAX_QUANTITY) if quantity.isdigit() else 1
        sale = coupons.running_sale(gallery=gallery, kind=coupons.PRINT)
        amount = coupons.sale_price(price=product.price, sale=sale) * copies
        return (
            [{"kind": coupons.PRINT, "product_id": product.pk, "amount": amount}],
            sheet.currency,
            sheet.print_shipping,
        )
    package_id, count = request.GET.get("package", ""), request.GET.get("count", "")
    package = None
    if package_id:
        package = Package.objects.filter(pk=int(package_id) if package_id.isdigit() else 0, is_active=True).first()
        if package is None:
            raise prices.PriceError(_("This package is no longer offered."), 404)
    size = len(orders.buyable_portrait_ids(gallery=gallery)) if package is not None and not package.count else 0
    number = size or (min(int(count), orders.MAX_PORTRAITS_PER_ORDER) if count.isdigit() else 0)
    quote = coupons.priced(gallery=gallery, count=number, package=package, gallery_size=size)
    return [{"kind": coupons.DIGITAL, "product_id": None, "amount": quote.total}], quote.currency, Decimal("0.00")


@gallery_page("GET")
def gallery_coupon(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """GET ?code=…&count=<portraits ticked>&package=<id> (the cart), or ?code=…&product=<id>&quantity=<n> (the
    print page): what the code takes off, for the page to show before paying (JSON: subtotal, discount, total
    with the shipping, formatted for the client; or the refusal's message with its status). Checkout checks it
    all again."""
    if not connect.can_take_payments():
        return JsonResponse({"message": _("Buying isn't open in this gallery.")}, status=409)
    code = request.GET.get("code", "")[:100]
    try:
        lines, currency, shipping = _coupon_lines(request, gallery)
        found = _with_coupon(
            request,
            code or " ",  # an empty code is checked (and refused as unknown) too
            lambda: coupons.check_code(code=code, lines=lines, client_id=gallery.client_id, currency=currency),
        )
    except (prices.PriceError, coupons.CouponRefused) as exc:
        return JsonResponse({"message": exc.message}, status=exc.status)
    total = found.total + shipping
    return JsonResponse(
        {
            "code": found.coupon.code,
            "subtotal": str(found.subtotal),
            "discount": str(found.amount),
            "shipping": str(shipping),
            "total": str(total),
            "message": _("%(code)s: %(discount)s off, %(total)s to pay.")
            % {
                "code": found.coupon.code,
                "discount": money(found.amount, currency),
                "total": money(total, currency),
            },
        }
    )


def _success_context(request: HttpRequest, gallery: Gallery, order: Order | None) -> dict:
    context: dict = {"gallery": gallery, "order": order, "poll_seconds": POLL_SECONDS, "tiles": []}
    if order is not None and order.status == Order.Status.PAID:
        items = list(order.items.all())
        context["print_items"] = [item for item in items if item.product_name]
        context["fulfilment"] = getattr(order, "fulfilment", None) if context["print_items"] else None
        portrait_ids = {item.portrait_id for item in items if not item.product_name}
        order_ = client_services.gallery_order(gallery=gallery)
        wanted = [e for e, p in zip(order_.entry_ids, order_.portrait_ids, strict=True) if p in portrait_ids]
        entries = client_services.entries_by_ids(gallery=gallery, entry_ids=wanted)
        entitlements = client_services.active_entitlements(gallery=gallery)
        context["tiles"] = client_services.tiles(gallery=gallery, entries=entries, entitlements=entitlements)
        context["pin_needed"] = not access.has_pin(request, gallery)
    return context


@gallery_page("GET")
def gallery_order_success(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """Where Stripe sends the client back (?session_id=…): "Payment received — your downloads" once the order is
    paid; while the webhook is on its way, a notice that polls."""
    order = orders.order_for_session(gallery=gallery, session_id=request.GET.get("session_id", ""))
    if order is None:
        return _refused(request, gallery, _("We couldn't find this payment. Back to the gallery to try again."), 404)
    return render(request, "billing/gallery/success.html", _success_context(request, gallery, order))


@gallery_page("GET")
def gallery_order_status(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """What the success page polls: the order's part of the page again."""
    order = orders.order_for_session(gallery=gallery, session_id=request.GET.get("session_id", ""))
    if order is None:
        return _refused(request, gallery, _("We couldn't find this payment."), 404)
    return render(request, "billing/gallery/_order.html", _success_context(request, gallery, order))


def cart_context(
    *, gallery: Gallery, tiles: Sequence[client_services.Tile] = (), any_unbought: bool | None = None
) -> dict:
    """What the gallery's cart shows (for the gallery page): whether buying is possible, the price per portrait,
    the packages (at the running sale's prices, if any: `sale`), and which of the tiles shown can still be bought
    (no full-size download yet). `any_unbought`:
    whether any portrait of the whole gallery can still be bought (the page knows; the form must be there for the
    tiles of later pages, loaded as the client scrolls, even when every tile of this one is bought); without it,
    the tiles shown decide. One query while the studio can't take payments, four when it can, whatever the
    number of portraits."""
    buyable_ids = {t.id for t in tiles if not any(o.size == Entitlement.Size.FULL for o in t.offers)}
    unbought = bool(buyable_ids) if any_unbought is None else bool(any_unbought or buyable_ids)
    if not connect.can_take_payments():
        # Said, not hidden: the client learns that buying isn't open yet (and whom to ask), when something in
        # the gallery could still be bought.
        return {"can_buy": False, "closed": unbought, "open": False}
    sheet = prices.price_sheet()
    # A running sale: the prices shown are the prices charged (billing.coupons); one query.
    sale = coupons.running_sale(gallery=gallery, kind=coupons.DIGITAL)
    unit = coupons.sale_price(price=sheet.price_per_portrait, sale=sale)
    packages = prices.active_packages()
    for package in packages:
        package.sale_price = coupons.sale_price(price=package.price, sale=sale)  # type: ignore[attr-defined]
    return {
        "can_buy": True,
        "open": unbought,
        "sheet": sheet,
        "sale": sale,
        "unit_price": unit,
        "packages": packages,
        "buyable_ids": buyable_ids,
        "price_minor": prices.to_minor(unit),
    }


def print_offer(*, gallery: Gallery, portrait: Any) -> dict[str, Any] | None:
    """For the portrait's page (billing_gallery.gallery_print_offer): the print page's link and the lowest price
    of the products offered for `portrait`; None when there is none, or the studio can't take payments."""
    if not connect.can_take_payments():
        return None
    products = print_service.active_products()
    if not products:
        return None
    offers = print_service.offers_for(size=print_service.portrait_size(portrait), products=products)
    if not offers:
        return None
    url = reverse("gallery_print", kwargs={"gallery_token": gallery.token, "portrait_id": portrait.pk})
    sale = coupons.running_sale(gallery=gallery, kind=coupons.PRINT)
    lowest = min(coupons.sale_price(price=o.product.price, sale=sale) for o in offers)
    return {"url": url, "from_price": lowest, "currency": prices.price_sheet().currency}
