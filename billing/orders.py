"""Clients pay the studio: orders in a gallery, paid through a Stripe Checkout Session as a destination charge to
the studio's connected account with the platform's application fee.

- :func:`start_checkout` (the client's gallery request): the portraits chosen (only the gallery's visible ones, not
  already entitled), priced from the price sheet or a package, refused while the studio can't take payments. The
  `Order` and its items are written first (pending), then the Checkout Session is created with the order's
  `idempotency_key` (a retry gets the same session), and the client is sent to its `url`. A running gallery sale
  lowers the prices charged, and a coupon code is checked under its row lock and taken off as the session's one
  discount (billing.coupons, docs/coupons.md): amount = subtotal - discount + shipping.
- Webhooks (called by billing/webhooks.py inside the transaction that stores the event once by its id):
  `checkout.session.completed` → paid and entitlements; `checkout.session.expired` → expired (never after paid);
  `charge.refunded` → refunded and the order's entitlements revoked. A handler finds the order by the session or
  payment intent id *and* checks the metadata (order and studio) against it: a webhook about another studio's
  order, or one that doesn't add up, changes nothing. Events may come in any order: each moves the order forward
  only (pending → paid → refunded; pending → expired; a refund that arrives before the payment is remembered as
  refunded and the late completion creates no entitlements).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import connect, coupons, fulfilment, messages, prices, stripe_client, webhook_events
from billing import prints as print_service
from billing.models import Order, OrderItem, Package, PrintFulfilment, StripeEvent
from billing.webhooks import handles
from clients.services import register_client_erasure_step
from galleries import client_services
from galleries.models import Entitlement, Gallery, GallerySettings
from jobs.services import enqueue_job
from tenants.context import platform_context, tenant_context
from tenants.refusals import Refused

log = structlog.get_logger("billing.orders")

MAX_PORTRAITS_PER_ORDER = 200


class CheckoutRefused(Refused):
    """A refusal for the client: `message` is shown as is, `status` is the HTTP status."""


# --- Starting a checkout --------------------------------------------------------------------------------------


def buyable_portrait_ids(*, gallery: Gallery) -> list[int]:
    """The gallery's visible portraits the client has no active full-size entitlement for, in gallery order."""
    entitled = set(
        Entitlement.objects.filter(gallery=gallery, revoked_at__isnull=True, size=Entitlement.Size.FULL).values_list(
            "portrait_id", flat=True
        )
    )
    # gallery_order: single-table queries (a join of the entries to their portraits lets row-level security's
    # misestimates walk every portrait of the double per entry: quadratic in the gallery's size).
    visible = client_services.gallery_order(gallery=gallery).portrait_ids
    return [pk for pk in visible if pk not in entitled]


def _chosen(gallery: Gallery, portrait_ids: Sequence[Any], package: Package | None) -> list[int]:
    buyable = buyable_portrait_ids(gallery=gallery)
    if package is not None and package.count == 0:
        if not buyable:
            raise CheckoutRefused(_("You already have every portrait of this gallery."), 409)
        return buyable
    wanted: list[int] = []
    for value in portrait_ids:
        try:
            pk = int(value)
        except (TypeError, ValueError):
            raise CheckoutRefused(_("This portrait is not in your gallery."), 404) from None
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise CheckoutRefused(_("Choose at least one portrait."))
    if len(wanted) > MAX_PORTRAITS_PER_ORDER:
        raise CheckoutRefused(_("Choose at most %(count)d portraits at a time.") % {"count": MAX_PORTRAITS_PER_ORDER})
    visible = set(client_services.gallery_order(gallery=gallery).portrait_ids)
    if any(pk not in visible for pk in wanted):
        raise CheckoutRefused(_("This portrait is not in your gallery."), 404)
    if any(pk not in buyable for pk in wanted):
        raise CheckoutRefused(_("You can already download one of these portraits: take it out of your choice."), 409)
    return wanted


def success_path(gallery: Gallery) -> str:
    return reverse("gallery_order_success", kwargs={"gallery_token": gallery.token})


def start_checkout(
    *,
    gallery: Gallery,
    portrait_ids: Sequence[Any] = (),
    package: Package | None = None,
    prints: Sequence[print_service.PrintChoice] = (),
    base_url: str,
    session_hash: str = "",
    coupon_code: str = "",
) -> Order:
    """Create the pending order and its Checkout Session; returns the order (its `checkout_url` attribute is where
    the client goes). `base_url` is the scheme and host the client uses (for the success and cancel links).
    Downloads (`portrait_ids`, or a `package`) and prints (`prints`: the client's choices on the print page) may
    be bought together; an order with prints asks Checkout for the shipping address and adds the shipping price.
    A running sale lowers the prices charged; `coupon_code` is checked and its discount taken off the items (not
    the shipping: billing.coupons), refused with CouponRefused."""
    billing = connect.studio_billing()
    if not connect.can_take_payments(billing):
        raise CheckoutRefused(
            _("The studio can't take payments online yet. Contact the studio to buy your portraits."), 409
        )
    if package is not None and not package.is_active:
        raise CheckoutRefused(_("This package is no longer offered."), 404)
    try:
        print_lines = print_service.resolve_choices(gallery=gallery, choices=prints) if prints else []
    except print_service.PrintRefused as exc:
        raise CheckoutRefused(exc.message, exc.status) from None
    chosen = _chosen(gallery, portrait_ids, package) if (portrait_ids or package or not print_lines) else []
    sheet = prices.price_sheet()
    quote = None
    if chosen:
        try:
            quote = coupons.priced(gallery=gallery, count=len(chosen), package=package, gallery_size=len(chosen))
        except prices.PriceError as exc:
            raise CheckoutRefused(exc.message) from None
    print_sale = coupons.running_sale(gallery=gallery, kind=coupons.PRINT) if prints else None
    print_units = [coupons.sale_price(price=line.product.price, sale=print_sale) for line in print_lines]
    shipping = sheet.print_shipping if print_lines else Decimal("0")
    # The order's lines as the coupon sees them (kind, product, amount at the prices charged).
    lines: list[coupons.Line] = []
    if quote is not None:
        lines.append({"kind": coupons.DIGITAL, "product_id": None, "amount": quote.total})
    lines += [
        {"kind": coupons.PRINT, "product_id": line.product.pk, "amount": unit * line.quantity}
        for line, unit in zip(print_lines, print_units, strict=True)
    ]
    with transaction.atomic():
        # The coupon, checked under its row lock: a concurrent checkout with the same code waits, then counts ours.
        discount = (
            coupons.check_code(
                code=coupon_code, lines=lines, client_id=gallery.client_id, currency=sheet.currency, lock=True
            )
            if coupon_code.strip()
            else None
        )
        subtotal = sum((line["amount"] for line in lines), Decimal("0"))
        amount = (discount.total if discount is not None else subtotal) + shipping
        order = Order.objects.create(
            gallery=gallery,
            package=package if chosen else None,
            currency=sheet.currency,
            subtotal=subtotal,
            coupon=discount.coupon if discount is not None else None,
            discount=discount.amount if discount is not None else Decimal("0"),
            shipping_amount=shipping,
            amount=amount,
            application_fee=prices.fee_for(amount),
            connect_account_id=billing.connect_account_id,
            created_by_session=session_hash[:64],
        )
        items = print_service.order_items(order=order, lines=print_lines, unit_prices=print_units)
        if quote is not None:
            items[:0] = [
                OrderItem(order=order, portrait_id=pk, size=Entitlement.Size.FULL, unit_price=unit)
                for pk, unit in zip(chosen, quote.unit_prices, strict=True)
            ]
        OrderItem.objects.bulk_create(items)
    gallery_url = base_url + reverse("gallery_public", kwargs={"gallery_token": gallery.token})
    metadata = {"order_id": str(order.pk), "studio_id": str(gallery.studio_id), "gallery_id": str(gallery.pk)}
    line_items = []
    if quote is not None and package is not None:
        line_items.append(_line(sheet.currency, quote.total, f"{package.name}: {len(chosen)} portraits", 1))
    elif quote is not None:
        line_items.append(_line(sheet.currency, quote.unit_prices[0], "Portrait (full resolution)", len(chosen)))
    line_items += [
        _line(sheet.currency, unit, print_service.label(line.product), line.quantity)
        for line, unit in zip(print_lines, print_units, strict=True)
    ]
    shipping_params: dict[str, Any] = {}
    if print_lines:
        shipping_params = {
            "shipping_address_collection": {"allowed_countries": print_service.ship_to(sheet)},
            "shipping_options": [
                {
                    "shipping_rate_data": {
                        "type": "fixed_amount",
                        "fixed_amount": {"amount": prices.to_minor(shipping), "currency": sheet.currency},
                        "display_name": "Shipping" if shipping else "Free shipping",
                    }
                }
            ],
            "phone_number_collection": {"enabled": True},
        }
    stripe = stripe_client.client()
    try:
        session = stripe.checkout.Session.create(
            mode="payment",
            line_items=line_items,
            **_discounts(order, discount),
            payment_intent_data={
                "application_fee_amount": prices.to_minor(order.application_fee),
                "transfer_data": {"destination": billing.connect_account_id},
                "metadata": metadata,
            },
            metadata=metadata,
            client_reference_id=str(order.pk),
            customer_email=gallery.client.email or None,
            success_url=base_url + success_path(gallery) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=gallery_url + "?checkout=cancelled",
            idempotency_key=str(order.idempotency_key),
            **shipping_params,
        )
    except stripe.StripeError as exc:
        log.warning("checkout_session_failed", order_id=order.pk, error=str(exc))
        Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
        raise CheckoutRefused(_("The payment page could not be opened. Try again in a minute."), 502) from None
    Order.objects.filter(pk=order.pk).update(checkout_session_id=session["id"])
    order.checkout_session_id = session["id"]
    order.checkout_url = session["url"]  # type: ignore[attr-defined]
    log.info(
        "checkout_started", order_id=order.pk, gallery_id=gallery.pk, portraits=len(chosen), prints=len(print_lines)
    )
    return order


def _discounts(order: Order, discount: coupons.Discount | None) -> dict[str, Any]:
    """The session's `discounts` argument (none without a coupon). Raises stripe's errors."""
    found = coupons.stripe_discounts(order=order, discount=discount)
    return {"discounts": found} if found else {}


def _line(currency: str, amount: Any, name: str, quantity: int) -> dict[str, Any]:
    return {
        "price_data": {"currency": currency, "unit_amount": prices.to_minor(amount), "product_data": {"name": name}},
        "quantity": quantity,
    }


# --- Reads for the client's pages -----------------------------------------------------------------------------


def order_for_session(*, gallery: Gallery, session_id: str) -> Order | None:
    """The gallery's order of this Checkout Session (another gallery's: None)."""
    if not session_id or len(session_id) > 200:
        return None
    return Order.objects.filter(gallery=gallery, checkout_session_id=session_id).first()


# --- Webhooks -------------------------------------------------------------------------------------------------


def _event_dict(event: Any) -> dict[str, Any]:
    if hasattr(event, "to_dict"):
        return event.to_dict()
    return dict(event)


def _object(event: Any) -> dict[str, Any]:
    return (_event_dict(event).get("data") or {}).get("object") or {}


def _find(**lookup: Any) -> Order | None:
    """The order with this session or payment intent id, whatever its studio (a webhook has none yet)."""
    with platform_context():
        return Order.objects.select_related("studio").filter(**lookup).first()


def _matches(order: Order, metadata: dict[str, Any]) -> bool:
    """The event's metadata names this very order of this very studio."""
    return str(metadata.get("order_id") or "") == str(order.pk) and str(metadata.get("studio_id") or "") == str(
        order.studio_id
    )


def _download_limit(gallery: Gallery) -> int:
    if gallery.download_limit is not None:
        return gallery.download_limit
    row = GallerySettings.objects.filter().first()
    return row.download_limit if row is not None else GallerySettings._meta.get_field("download_limit").default


def _grant(order: Order) -> int:
    """The order's entitlements (once: an existing one of the order is not made again)."""
    gallery = order.gallery
    if gallery is None:  # the client was erased before the payment arrived: nothing to download, nobody to serve
        return 0
    limit = _download_limit(gallery)
    existing = set(
        Entitlement.objects.filter(
            gallery=gallery, source=Entitlement.Source.ORDER, order_ref=str(order.pk)
        ).values_list("portrait_id", "size")
    )
    new = [
        Entitlement(
            gallery=gallery,
            portrait_id=item.portrait_id,
            size=item.size,
            source=Entitlement.Source.ORDER,
            order_ref=str(order.pk),
            download_limit=limit,
        )
        for item in order.items.all()
        if item.product_name == "" and (item.portrait_id, item.size) not in existing  # prints are shipped
    ]
    Entitlement.objects.bulk_create(new)
    return len(new)


def _note(record: StripeEvent | None, order: Order) -> None:
    if record is not None:
        record.studio = order.studio


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
def handle_checkout_completed(event: Any, record: StripeEvent | None = None) -> str:
    """`checkout.session.completed`: the order paid and its entitlements created. Returns what it did."""
    session = _object(event)
    session_id = str(session.get("id") or "")
    order = _find(checkout_session_id=session_id) if session_id else None
    if order is None:
        return f"ignored: no order for session {session_id or '?'}"
    if not _matches(order, session.get("metadata") or {}):
        log.warning("checkout_metadata_mismatch", order_id=order.pk, session=session_id)
        return f"ignored: metadata doesn't match order {order.pk}"
    _note(record, order)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return f"ignored: session {session_id} not paid ({session.get('payment_status')})"
    with tenant_context(order.studio), transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("gallery").get(pk=order.pk)
        if session.get("amount_total") is not None and int(session["amount_total"]) != prices.to_minor(order.amount):
            log.warning("checkout_amount_mismatch", order_id=order.pk, session=session_id)
            return f"ignored: amount doesn't match order {order.pk}"
        order.payment_intent_id = order.payment_intent_id or str(session.get("payment_intent") or "")
        if order.gallery_id is not None:  # an erased client's order stays anonymous
            order.email = order.email or str((session.get("customer_details") or {}).get("email") or "")[:254]
        if order.status == Order.Status.REFUNDED:  # the refund came first: paid once, given back, nothing to grant
            order.paid_at = order.paid_at or timezone.now()
            order.save(update_fields=["payment_intent_id", "email", "paid_at"])
            return f"order {order.pk} already refunded: no entitlements"
        if order.status == Order.Status.PAID:
            return f"order {order.pk} already paid"
        order.status, order.paid_at = Order.Status.PAID, timezone.now()
        order.save(update_fields=["status", "paid_at", "payment_intent_id", "email"])
        granted = _grant(order)
        messages.queue_receipt(order)  # sent by a job once this commits
        if order.gallery_id is not None and print_service.has_prints(order):  # an erased client's: nobody to ship to
            fulfilment.open_fulfilment(order=order, session=session)
            enqueue_job(kind=print_service.PRINT_FILES_KIND, payload={"order_id": order.pk})
        webhook_events.order_paid(order)  # the studio's outgoing webhooks, sent by a job once this commits
    log.info("order_paid", order_id=order.pk, studio_id=order.studio_id, entitlements=granted)
    return f"order {order.pk} paid: {granted} entitlements"


@handles("checkout.session.expired", "checkout.session.async_payment_failed")
def handle_checkout_expired(event: Any, record: StripeEvent | None = None) -> str:
    """`checkout.session.expired`: a pending order expires; a paid or refunded one stays as it is."""
    session = _object(event)
    session_id = str(session.get("id") or "")
    order = _find(checkout_session_id=session_id) if session_id else None
    if order is None or not _matches(order, session.get("metadata") or {}):
        return f"ignored: no matching order for session {session_id or '?'}"
    _note(record, order)
    with tenant_context(order.studio), transaction.atomic():
        updated = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(status=Order.Status.EXPIRED)
    return f"order {order.pk} expired" if updated else f"order {order.pk} stays {order.status}"


def _revoke(order: Order) -> int:
    return Entitlement.objects.filter(
        gallery_id=order.gallery_id,
        source=Entitlement.Source.ORDER,
        order_ref=str(order.pk),
        revoked_at__isnull=True,
    ).update(revoked_at=timezone.now())


@handles("charge.refunded")
def handle_charge_refunded(event: Any, record: StripeEvent | None = None) -> str:
    """`charge.refunded`: a fully refunded charge refunds its order and revokes the order's entitlements (after
    a download too: what was downloaded stays downloaded, the next download is refused). A partial refund is
    recorded in the log only (the studio decides what it means). A refund that arrives before the completion
    marks the order refunded; the late completion then grants nothing."""
    charge = _object(event)
    pi_id = str(charge.get("payment_intent") or "")
    if not pi_id:
        return "ignored: no payment intent"
    order = _find(payment_intent_id=pi_id)
    if order is None:
        order = _order_from_metadata(charge.get("metadata") or {})
        if order is None:
            return f"ignored: no order for payment intent {pi_id}"
    elif not _matches(order, charge.get("metadata") or {}):
        log.warning("refund_metadata_mismatch", order_id=order.pk, payment_intent=pi_id)
        return f"ignored: metadata doesn't match order {order.pk}"
    _note(record, order)
    if not charge.get("refunded"):
        log.info("order_partially_refunded", order_id=order.pk, amount_refunded=charge.get("amount_refunded"))
        return f"order {order.pk}: partial refund recorded"
    with tenant_context(order.studio), transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.payment_intent_id and order.payment_intent_id != pi_id:
            return f"ignored: order {order.pk} was paid with another payment intent"
        order.payment_intent_id = pi_id
        already = order.status == Order.Status.REFUNDED
        order.status = Order.Status.REFUNDED
        order.refunded_at = order.refunded_at or timezone.now()
        order.save(update_fields=["status", "refunded_at", "payment_intent_id"])
        revoked = _revoke(order)
        fulfilment.cancel_for_refund(order=order)
        if not already:
            webhook_events.order_refunded(order)
    log.info("order_refunded", order_id=order.pk, studio_id=order.studio_id, revoked=revoked)
    return f"order {order.pk} refunded{' again' if already else ''}: {revoked} entitlements revoked"


def _order_from_metadata(metadata: dict[str, Any]) -> Order | None:
    """A refund that arrives before the completion: the order named by the charge's metadata (which must name
    its studio too), with no payment intent recorded yet."""
    try:
        order_id, studio_id = int(metadata.get("order_id") or 0), int(metadata.get("studio_id") or 0)
    except (TypeError, ValueError):
        return None
    if not order_id or not studio_id:
        return None
    return _find(pk=order_id, studio_id=studio_id, payment_intent_id="")


def refund(*, order: Order, reason: str = "requested_by_customer") -> str:
    """Ask Stripe to refund a paid order (staff action); the `charge.refunded` webhook does the rest. Returns
    the refund's id. The transfer to the studio and the application fee are reversed too (destination charge)."""
    if order.status != Order.Status.PAID or not order.payment_intent_id:
        raise CheckoutRefused("Only a paid order can be refunded.", 409)
    stripe = stripe_client.client()
    created = stripe.Refund.create(
        payment_intent=order.payment_intent_id,
        reason=reason,
        reverse_transfer=True,
        refund_application_fee=True,
        metadata={"order_id": str(order.pk), "studio_id": str(order.studio_id)},
        idempotency_key=stripe_client.idempotency_key("refund", order.pk),
    )
    return str(created["id"])


# --- Erasure --------------------------------------------------------------------------------------------------


@register_client_erasure_step("orders")
def anonymise_orders_of_client(client: Any) -> Mapping[str, int]:
    """A client's erasure keeps the orders of their galleries as financial records, anonymised: the buyer's email
    and the gallery session's hash are cleared here; the gallery and the portraits go with the erasure (the
    order's gallery and its items' portraits become empty); amounts, currency, fee, status, dates and the Stripe
    ids stay, for the studio's accounts and for refunds; the shipping addresses of print orders are cleared. What
    Stripe itself keeps is the studio's to erase in its
    Stripe dashboard (docs/billing-orders.md)."""
    count = Order.objects.filter(gallery__client=client).update(email="", created_by_session="")
    if not count:
        return {}  # the receipt lists what was actually done
    # The shipping addresses of their print orders go too (a print not yet shipped can't be sent any more).
    addresses = PrintFulfilment.objects.filter(order__gallery__client=client).update(
        ship_name="", ship_address={}, ship_phone=""
    )
    log.info("orders_anonymised", client_id=client.pk, orders=count, addresses=addresses)
    return {"orders_anonymised": count, **({"shipping_addresses_erased": addresses} if addresses else {})}
