"""Coupons and gallery sales (issue 20): codes a client types in the gallery's cart, and time-limited sales.

A **coupon** takes a percentage or a fixed amount off the items it applies to (everything, digital downloads,
prints, or some print products), within its limits: dates, total uses, uses per client, a minimum order. A
**sale** lowers the unit prices of one gallery (or of every gallery) for a while: the prices shown and charged are
the sale prices (the best single sale applies), and a coupon then applies on top of them.

How the discount is computed (`discount_minor`), exactly as the Stripe objects we create make Stripe compute it:

- the *eligible amount* is the sum of the order's lines the coupon applies to, in the currency's minor unit;
- percent off: eligible × percent / 100, rounded half up to the minor unit;
- amount off: the coupon's amount, capped at the eligible amount.

How Stripe is told (`stripe_discounts`): Checkout takes one discount per session, a promotion code or a coupon.

- When the coupon applies to every line of the order, has no per-client limit, and is a fixed amount or the
  order has a single line, the studio's own Promotion Code (made with the coupon, on the platform account where
  the Checkout Sessions are made) is passed: `discounts=[{"promotion_code": ...}]`. Stripe then enforces the same
  total uses, end date and minimum order too, and its count of redemptions matches the report.
- Otherwise (some lines only, a per-client limit, a percentage across several lines that Stripe would allocate
  and round line by line), a single-use Stripe Coupon of exactly the computed discount (amount off, named after the
  code) is made for the order: `discounts=[{"coupon": ...}]`.

Either way the session's `amount_total` is the order's `amount`, which the `checkout.session.completed` webhook
checks strictly.

A use counts when the order is paid (refunded later: still a use, as at Stripe). Limits are checked at checkout
under the coupon's row lock (`select_for_update`), counting the pending orders of the last 24 hours with the
coupon as holding a use (a Checkout Session lives at most 24 hours); an expired or cancelled order frees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypedDict

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import prices, stripe_client
from billing.models import Coupon, GallerySale, Order, PrintProduct
from galleries.models import Gallery
from tenants.refusals import Refused
from tenants.templatetags.studio_tags import client_date, money

log = structlog.get_logger("billing.coupons")

DIGITAL, PRINT = "digital", "print"
PENDING_HOLD = timedelta(hours=24)
CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,29}")
MIN_CHARGE = Decimal("0.50")
MAX_PERCENT = Decimal("100")
CENT = Decimal("0.01")


class CouponRefused(Refused):
    """A code refused for a cart, or a coupon or sale refused to the studio: `message` is shown as is."""

    code = "coupon_refused"


class Line(TypedDict):
    """One line of an order as the discount sees it: `kind` "digital" or "print", the print's product (None for a
    download), and its amount (unit price × quantity, at the prices charged: sale prices)."""

    kind: str
    product_id: int | None
    amount: Decimal


def normalise_code(code: Any) -> str:
    return str(code or "").strip().upper()


# --- Discounts ----------------------------------------------------------------------------------------------------


def applies(*, applies_to: str, product_ids: Iterable[int], line: Line) -> bool:
    """Whether a coupon (or a sale: all / digital / prints) with these rules applies to this line."""
    if applies_to == Coupon.AppliesTo.ALL:
        return True
    if applies_to == Coupon.AppliesTo.DIGITAL:
        return line["kind"] == DIGITAL
    if applies_to == Coupon.AppliesTo.PRINTS:
        return line["kind"] == PRINT
    return line["kind"] == PRINT and line["product_id"] in set(product_ids)


def discount_minor(*, percent_off: Decimal | None, amount_off: Decimal | None, eligible_minor: int) -> int:
    """The discount in minor units: percent off the eligible amount rounded half up, or the amount off capped at
    the eligible amount (the rule the fake Stripe applies too)."""
    if percent_off is not None:
        return int((Decimal(eligible_minor) * percent_off / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return min(prices.to_minor(amount_off or Decimal("0")), eligible_minor)


@dataclass(frozen=True)
class Discount:
    """A coupon applied to an order's lines: the subtotal (every line), the eligible part, the discount, and
    whether Checkout's promotion code expresses it (see the module's docstring)."""

    coupon: Coupon
    subtotal: Decimal
    eligible: Decimal
    amount: Decimal
    promotion_code: bool

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.amount


def compute_discount(*, coupon: Coupon, lines: Sequence[Line], product_ids: Iterable[int] | None = None) -> Discount:
    """The coupon's discount on these lines (no limit checked)."""
    if product_ids is None:
        product_ids = coupon_product_ids(coupon)
    product_ids = set(product_ids)
    subtotal = sum((line["amount"] for line in lines), Decimal("0"))
    eligible = sum(
        (line["amount"] for line in lines if applies(applies_to=coupon.applies_to, product_ids=product_ids, line=line)),
        Decimal("0"),
    )
    minor = discount_minor(
        percent_off=coupon.percent_off, amount_off=coupon.amount_off, eligible_minor=prices.to_minor(eligible)
    )
    whole = eligible == subtotal and all(
        applies(applies_to=coupon.applies_to, product_ids=product_ids, line=line) for line in lines
    )
    promotion = (
        whole
        and bool(coupon.stripe_promotion_code_id)
        and coupon.max_uses_per_client is None
        and (coupon.amount_off is not None or len(lines) == 1)
    )
    return Discount(
        coupon=coupon, subtotal=subtotal, eligible=eligible, amount=Decimal(minor) / 100, promotion_code=promotion
    )


def coupon_product_ids(coupon: Coupon) -> set[int]:
    if coupon.applies_to != Coupon.AppliesTo.PRODUCTS:
        return set()
    return set(coupon.products.values_list("pk", flat=True))


# --- Checking a code for a cart -------------------------------------------------------------------------------


def uses(*, coupon: Coupon, at: datetime | None = None, client_id: int | None = None) -> int:
    """The coupon's uses: its paid orders (refunded ones included) and its pending orders of the last 24 hours;
    with `client_id`, only that client's."""
    at = at or timezone.now()
    qs = Order.objects.filter(coupon=coupon).filter(
        Q(paid_at__isnull=False)
        | Q(status__in=[Order.Status.PAID, Order.Status.REFUNDED])
        | Q(status=Order.Status.PENDING, created_at__gte=at - PENDING_HOLD)
    )
    if client_id is not None:
        qs = qs.filter(gallery__client_id=client_id)
    return qs.count()


def check_code(
    *,
    code: str,
    lines: Sequence[Line],
    client_id: int | None,
    currency: str,
    at: datetime | None = None,
    lock: bool = False,
) -> Discount:
    """The code's discount on these lines for this client, or CouponRefused with the reason. With `lock` (at
    checkout, inside the transaction that writes the order) the coupon's row is locked first, so two concurrent
    checkouts count each other's pending order."""
    at = at or timezone.now()
    code = normalise_code(code)
    qs = Coupon.objects.filter(code=code, is_active=True)
    if lock:
        qs = qs.select_for_update()
    coupon = qs.first() if code and len(code) <= 40 else None
    if coupon is None:
        raise CouponRefused(_("This code doesn't exist. Check it and try again."), 404)
    if coupon.starts_at is not None and at < coupon.starts_at:
        raise CouponRefused(
            _("This code can be used from %(date)s.") % {"date": client_date(coupon.starts_at, "time")}, 409
        )
    if coupon.ends_at is not None and at >= coupon.ends_at:
        raise CouponRefused(_("This code has expired."), 410)
    if coupon.max_uses is not None and uses(coupon=coupon, at=at) >= coupon.max_uses:
        raise CouponRefused(_("This code has been used as many times as it can be."), 409)
    if (
        coupon.max_uses_per_client is not None
        and client_id is not None
        and uses(coupon=coupon, at=at, client_id=client_id) >= coupon.max_uses_per_client
    ):
        raise CouponRefused(_("You have already used this code."), 409)
    subtotal = sum((line["amount"] for line in lines), Decimal("0"))
    if coupon.min_order is not None and subtotal < coupon.min_order:
        raise CouponRefused(
            _("This code needs an order of at least %(amount)s.") % {"amount": money(coupon.min_order, currency)}
        )
    discount = compute_discount(coupon=coupon, lines=lines)
    if discount.eligible <= 0 or (coupon.amount_off is not None and coupon.currency != currency):
        raise CouponRefused(_("This code doesn't apply to the items you chose."))
    if discount.total < MIN_CHARGE:
        raise CouponRefused(
            _("With this code the order would be under %(amount)s, the smallest payment possible: add an item.")
            % {"amount": money(MIN_CHARGE, currency)}
        )
    return discount


def stripe_discounts(*, order: Order, discount: Discount | None) -> list[dict[str, str]]:
    """The session's `discounts`: the coupon's promotion code, or a single-use coupon of the order's discount
    (made at Stripe here, with the order's idempotency key). Raises stripe's errors."""
    if discount is None or discount.amount <= 0:
        return []
    coupon = discount.coupon
    if discount.promotion_code:
        return [{"promotion_code": coupon.stripe_promotion_code_id}]
    stripe = stripe_client.client()
    created = stripe.Coupon.create(
        amount_off=prices.to_minor(discount.amount),
        currency=order.currency,
        duration="once",
        max_redemptions=1,
        name=coupon.code,
        metadata={"coupon_id": str(coupon.pk), "order_id": str(order.pk), "studio_id": str(order.studio_id)},
        idempotency_key=stripe_client.idempotency_key("order-coupon", order.idempotency_key),
    )
    return [{"coupon": str(created["id"])}]


# --- Sales ----------------------------------------------------------------------------------------------------


def active_sales(*, gallery: Gallery, at: datetime | None = None) -> list[GallerySale]:
    """The sales running now for this gallery (its own and the studio's), best first."""
    at = at or timezone.now()
    return list(
        GallerySale.objects.filter(
            Q(gallery=gallery) | Q(gallery__isnull=True), starts_at__lte=at, ends_at__gt=at
        ).order_by("-percent_off", "ends_at", "id")
    )


def best_sale(*, sales: Sequence[GallerySale], kind: str) -> GallerySale | None:
    """The best single sale for a line of this kind ("digital" or "print")."""
    for sale in sales:  # best first
        if (
            sale.applies_to == GallerySale.AppliesTo.ALL
            or (sale.applies_to == GallerySale.AppliesTo.DIGITAL and kind == DIGITAL)
            or (sale.applies_to == GallerySale.AppliesTo.PRINTS and kind == PRINT)
        ):
            return sale
    return None


def running_sale(*, gallery: Gallery, kind: str, at: datetime | None = None) -> GallerySale | None:
    """The best sale running now in this gallery for a line of this kind (one query)."""
    return best_sale(sales=active_sales(gallery=gallery, at=at), kind=kind)


def sale_price(*, price: Decimal, sale: GallerySale | None) -> Decimal:
    """A unit price on sale: price × (100 − percent) / 100, rounded half up to the cent."""
    if sale is None:
        return price
    return (price * (MAX_PERCENT - sale.percent_off) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def priced(*, gallery: Gallery, count: int, package: Any = None, gallery_size: int = 0) -> prices.Quote:
    """`prices.quote` at the gallery's running sale's prices (the best single sale for downloads)."""
    sale = running_sale(gallery=gallery, kind=DIGITAL)
    return prices.quote(
        count=count, package=package, gallery_size=gallery_size, sale=lambda price: sale_price(price=price, sale=sale)
    )


# --- The studio's coupons and sales -------------------------------------------------------------------------------


def _decimal(value: Any, message: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise CouponRefused(message) from None
    if not number.is_finite():
        raise CouponRefused(message)
    return number


def _percent(value: Any) -> Decimal | None:
    message = _("The percentage off must be a number from 1 to 100.")
    percent = _decimal(value, message)
    if percent is not None and not (Decimal("1") <= percent <= MAX_PERCENT and percent == percent.quantize(CENT)):
        raise CouponRefused(message)
    return percent


def _positive_int(value: Any, message: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CouponRefused(message) from None
    if number < 1 or number > 1_000_000:
        raise CouponRefused(message)
    return number


def _stripe_ready() -> None:
    if not stripe_client.is_configured():
        raise CouponRefused(_(stripe_client.SETUP_HINT), 503)


def create_coupon(
    *,
    code: str,
    description: str = "",
    percent_off: Any = None,
    amount_off: Any = None,
    applies_to: str = Coupon.AppliesTo.ALL,
    product_ids: Sequence[Any] = (),
    min_order: Any = None,
    max_uses: Any = None,
    max_uses_per_client: Any = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Coupon:
    """A new coupon, with its Stripe Coupon and Promotion Code on the platform account (idempotency keys from the
    coupon's row). Refused (400) for bad input, 409 for a code already active, 502/503 when Stripe fails or is
    not configured: then nothing is stored."""
    code = normalise_code(code)
    if not CODE_RE.fullmatch(code):
        raise CouponRefused(_("A code has 3 to 30 letters, digits or dashes."))
    description = str(description or "").strip()
    if len(description) > 200:
        raise CouponRefused(_("The description is too long (200 characters at most)."))
    percent = _percent(percent_off)
    amount = _decimal(amount_off, _("The amount off must be a number like 5.00."))
    if (percent is None) == (amount is None):
        raise CouponRefused(_("Give either a percentage off or an amount off, not both."))
    if amount is not None and not (Decimal("0.01") <= amount <= prices.MAX_PRICE and amount == amount.quantize(CENT)):
        raise CouponRefused(_("The amount off must be between 0.01 and %(max)s.") % {"max": prices.MAX_PRICE})
    if applies_to not in Coupon.AppliesTo.values:
        raise CouponRefused(_("Choose what the code applies to."))
    products: list[PrintProduct] = []
    if applies_to == Coupon.AppliesTo.PRODUCTS:
        wanted = {int(p) for p in product_ids if str(p).strip().isdigit()}
        products = list(PrintProduct.objects.filter(pk__in=wanted))
        if not products or len(products) != len(wanted):
            raise CouponRefused(_("Choose the print products the code applies to."))
    minimum = _decimal(min_order, _("The minimum order must be a number like 30.00."))
    if minimum is not None and not (Decimal("0") <= minimum <= prices.MAX_PRICE * 100):
        raise CouponRefused(_("The minimum order must be a number like 30.00."))
    total_uses = _positive_int(max_uses, _("The number of uses must be a whole number, 1 or more."))
    client_uses = _positive_int(max_uses_per_client, _("The number of uses must be a whole number, 1 or more."))
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise CouponRefused(_("The code must end after it starts."))
    if ends_at is not None and ends_at <= timezone.now():
        raise CouponRefused(_("The end date is already past."))
    _stripe_ready()
    currency = prices.price_sheet().currency
    stripe = stripe_client.client()
    try:
        with transaction.atomic():
            coupon = Coupon.objects.create(
                code=code,
                description=description,
                percent_off=percent,
                amount_off=amount,
                currency=currency,
                applies_to=applies_to,
                min_order=minimum,
                max_uses=total_uses,
                max_uses_per_client=client_uses,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            coupon.products.set(products)
            _create_at_stripe(stripe, coupon)
    except IntegrityError:
        raise CouponRefused(_("A code %(code)s is already active.") % {"code": code}, 409) from None
    except stripe.StripeError as exc:
        log.warning("coupon_stripe_failed", code=code, error=str(exc))
        message = _("Stripe could not be reached or refused the code. Nothing changed; try again.")
        raise CouponRefused(message, 502) from None
    log.info("coupon_created", coupon_id=coupon.pk, code=code)
    return coupon


def _create_at_stripe(stripe: Any, coupon: Coupon) -> None:
    """The Stripe Coupon and Promotion Code of a new coupon (inside its creating transaction: a failure stores
    nothing). The promotion code's own code names the studio and the coupon (every studio's codes live on the
    platform account, where Checkout Sessions are made); clients never type it at Stripe."""
    key = ("coupon", coupon.studio_id, coupon.pk, coupon.created_at.isoformat())
    terms: dict[str, Any] = (
        {"percent_off": str(coupon.percent_off)}
        if coupon.percent_off is not None
        else {"amount_off": prices.to_minor(coupon.amount_off), "currency": coupon.currency}
    )
    metadata = {"coupon_id": str(coupon.pk), "studio_id": str(coupon.studio_id)}
    made = stripe.Coupon.create(
        duration="once",
        name=coupon.code,
        metadata=metadata,
        idempotency_key=stripe_client.idempotency_key(*key, "coupon"),
        **terms,
    )
    promo: dict[str, Any] = {
        "promotion": {"type": "coupon", "coupon": str(made["id"])},
        "code": f"{coupon.code}-{coupon.studio_id}-{coupon.pk}",
        "metadata": metadata,
    }
    if coupon.max_uses is not None:
        promo["max_redemptions"] = coupon.max_uses
    if coupon.ends_at is not None:
        promo["expires_at"] = int(coupon.ends_at.timestamp())
    if coupon.min_order:
        promo["restrictions"] = {
            "minimum_amount": prices.to_minor(coupon.min_order),
            "minimum_amount_currency": coupon.currency,
        }
    code = stripe.PromotionCode.create(idempotency_key=stripe_client.idempotency_key(*key, "promotion"), **promo)
    coupon.stripe_coupon_id, coupon.stripe_promotion_code_id = str(made["id"]), str(code["id"])
    coupon.save(update_fields=["stripe_coupon_id", "stripe_promotion_code_id"])


def update_coupon(*, coupon: Coupon, description: str | None = None, max_uses_per_client: Any = "") -> Coupon:
    """Change what can change after creation: the description and the per-client limit (checked here only).
    The other terms live at Stripe too, in objects that can't change: deactivate the code and make a new one."""
    fields = []
    if description is not None:
        description = str(description).strip()
        if len(description) > 200:
            raise CouponRefused(_("The description is too long (200 characters at most)."))
        coupon.description = description
        fields.append("description")
    if max_uses_per_client != "":
        coupon.max_uses_per_client = _positive_int(
            max_uses_per_client, _("The number of uses must be a whole number, 1 or more.")
        )
        fields.append("max_uses_per_client")
    if fields:
        coupon.save(update_fields=fields)
    return coupon


def deactivate_coupon(*, coupon: Coupon) -> Coupon:
    """The code stops working (here at once, and its Stripe promotion code is turned off); its report stays."""
    if not coupon.is_active:
        return coupon
    if coupon.stripe_promotion_code_id and stripe_client.is_configured():
        stripe = stripe_client.client()
        try:
            stripe.PromotionCode.modify(coupon.stripe_promotion_code_id, active=False)
        except stripe.StripeError as exc:  # ours refuses the code already; Stripe's is only reached through ours
            log.warning("promotion_code_deactivation_failed", coupon_id=coupon.pk, error=str(exc))
    coupon.is_active = False
    coupon.save(update_fields=["is_active"])
    log.info("coupon_deactivated", coupon_id=coupon.pk)
    return coupon


def create_sale(
    *,
    name: str,
    percent_off: Any,
    starts_at: datetime | None,
    ends_at: datetime | None,
    gallery: Gallery | None = None,
    applies_to: str = GallerySale.AppliesTo.ALL,
) -> GallerySale:
    name = str(name or "").strip()
    if not name or len(name) > 100:
        raise CouponRefused(_("Give the sale a name (up to 100 characters)."))
    percent = _percent(percent_off)
    if percent is None or percent >= MAX_PERCENT:
        raise CouponRefused(_("A sale takes 1 to 99 percent off."))
    if applies_to not in GallerySale.AppliesTo.values:
        raise CouponRefused(_("Choose what the sale applies to."))
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        raise CouponRefused(_("A sale needs a start and an end after it."))
    if ends_at <= timezone.now():
        raise CouponRefused(_("The end date is already past."))
    return GallerySale.objects.create(
        name=name, percent_off=percent, starts_at=starts_at, ends_at=ends_at, gallery=gallery, applies_to=applies_to
    )


def delete_sale(*, sale: GallerySale) -> None:
    """A sale ends (orders already made keep the prices they were charged)."""
    sale.delete()


# --- Reports --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeReport:
    """What a code brought in: its paid orders (refunded ones included), their amounts paid (revenue), the discount
    given on them, and the refunded orders and amount."""

    coupon: Coupon
    orders: int
    revenue: Decimal
    discount: Decimal
    refunds: int
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.revenue - self.refunded


def reports(*, coupons: QuerySet[Coupon] | None = None) -> list[CodeReport]:
    """Each coupon's report, newest coupon first (two queries whatever the number of codes and orders)."""
    money_field = DecimalField(max_digits=12, decimal_places=2)
    zero = Value(Decimal("0"), output_field=money_field)
    paid = Q(orders__paid_at__isnull=False) | Q(orders__status__in=[Order.Status.PAID, Order.Status.REFUNDED])
    refunded = Q(orders__status=Order.Status.REFUNDED)
    rows = (
        (coupons if coupons is not None else Coupon.objects.all())
        .order_by("-created_at", "-id")
        .annotate(
            paid_orders=Count("orders", filter=paid),
            revenue=Coalesce(Sum("orders__amount", filter=paid), zero),
            given=Coalesce(Sum("orders__discount", filter=paid), zero),
            refund_count=Count("orders", filter=refunded),
            refunded=Coalesce(Sum("orders__amount", filter=refunded), zero),
        )
    )
    return [
        CodeReport(
            coupon=c,
            orders=c.paid_orders,
            revenue=c.revenue,
            discount=c.given,
            refunds=c.refund_count,
            refunded=c.refunded,
        )
        for c in rows
    ]


def report(*, coupon: Coupon) -> CodeReport:
    return reports(coupons=Coupon.objects.filter(pk=coupon.pk))[0]
