"""The studio's price sheet (what its clients pay): one currency, a price per portrait, and packages ("5 portraits",
"all portraits of this gallery"). Owners and managers edit it (billing/views_prices.py); the gallery's cart reads
it (billing/orders.py). Keyword-only, typed, in the current studio's context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Package, PriceSheet
from tenants.refusals import Refused

CURRENCIES = ("eur", "usd", "gbp", "chf", "sek", "nok", "dkk", "pln", "cad", "aud")
DEFAULT_FEE_PERCENT = Decimal("10")
MAX_PRICE = Decimal("10000")


class PriceError(Refused, ValueError):
    """A price sheet or package refused: `message` is shown to the studio."""


def application_fee_percent() -> Decimal:
    """BILLING_APPLICATION_FEE_PERCENT (default 10): the platform's share of every client payment."""
    value = Decimal(str(getattr(settings, "BILLING_APPLICATION_FEE_PERCENT", DEFAULT_FEE_PERCENT)))
    return min(max(value, Decimal("0")), Decimal("100"))


def to_minor(amount: Decimal) -> int:
    """An amount in the currency's minor unit (cents), as Stripe takes it (two-decimal currencies only)."""
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def fee_for(amount: Decimal) -> Decimal:
    return (amount * application_fee_percent() / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def price_sheet() -> PriceSheet:
    """The studio's price sheet (created with the defaults on first use)."""
    sheet = PriceSheet.objects.filter().first()
    if sheet is None:
        with transaction.atomic():
            sheet, _ = PriceSheet.objects.get_or_create()
    return sheet


def checked_price(value: Any, what: str) -> Decimal:
    """`value` as a price (two decimals, 0.50 to MAX_PRICE), or PriceError naming `what`."""
    try:
        price = Decimal(str(value)).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError):
        raise PriceError(_("The %(what)s must be a number like 9.90.") % {"what": what}) from None
    if not price.is_finite() or price < Decimal("0.50") or price > MAX_PRICE:
        raise PriceError(_("The %(what)s must be between 0.50 and %(max)s.") % {"what": what, "max": MAX_PRICE})
    return price


def update_price_sheet(*, currency: str, price_per_portrait: Any) -> PriceSheet:
    currency = (currency or "").strip().lower()
    if currency not in CURRENCIES:
        raise PriceError(_("Choose one of the currencies offered."))
    sheet = price_sheet()
    sheet.currency = currency
    sheet.price_per_portrait = checked_price(price_per_portrait, gettext_lazy("price per portrait"))
    sheet.save(update_fields=["currency", "price_per_portrait", "updated_at"])
    return sheet


def add_package(*, name: str, count: int, price: Any) -> Package:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise PriceError(_("Give the package a name (up to 100 characters)."))
    if not isinstance(count, int) or count < 0 or count > 1000:
        raise PriceError(_("A package holds 1 to 1000 portraits, or 0 for all of the gallery."))
    return Package.objects.create(name=name, count=count, price=checked_price(price, gettext_lazy("package price")))


def set_package_active(*, package: Package, active: bool) -> Package:
    package.is_active = active
    package.save(update_fields=["is_active"])
    return package


def active_packages() -> list[Package]:
    return list(Package.objects.filter(is_active=True).order_by("price", "id"))


@dataclass(frozen=True)
class Quote:
    """What a choice costs: the total, the platform's fee, and each portrait's share (the last one takes the
    rounding rest so the shares add up to the total)."""

    currency: str
    total: Decimal
    fee: Decimal
    unit_prices: list[Decimal]
    package: Package | None = None


def quote(
    *,
    count: int,
    package: Package | None = None,
    gallery_size: int = 0,
    sale: Callable[[Decimal], Decimal] | None = None,
) -> Quote:
    """The price of `count` portraits: the price sheet's per-portrait price, or the package's price (a package of
    N portraits takes at most N; an "all" package takes every portrait of the gallery). `sale` turns a price into
    its sale price (billing.coupons.sale_price): the per-portrait price or the package's."""
    on_sale = sale or (lambda price: price)
    sheet = price_sheet()
    if count <= 0:
        raise PriceError(_("Choose at least one portrait."))
    if package is None:
        unit = on_sale(sheet.price_per_portrait)
        units = [unit] * count
        total = unit * count
    else:
        limit = package.count or gallery_size
        if package.count and count > package.count:
            raise PriceError(
                _("The package “%(name)s” holds %(count)s portraits: choose at most that.")
                % {"name": package.name, "count": package.count}
            )
        if not package.count and count != limit:
            raise PriceError(
                _("The package “%(name)s” is for all %(count)s portraits of the gallery.")
                % {"name": package.name, "count": limit}
            )
        total = on_sale(package.price)
        share = (total / count).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        units = [share] * (count - 1) + [total - share * (count - 1)]
    return Quote(currency=sheet.currency, total=total, fee=fee_for(total), unit_prices=units, package=package)
