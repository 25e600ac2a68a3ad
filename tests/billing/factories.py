"""Factories of billing's tenant-owned models (registered in tests/factories.FACTORIES, which imports this module)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import models

from tests.generation.factories import make_portrait
from tests.registry import factory, unique


@factory("billing.StudioBilling")
def make_studio_billing(tenant: Any) -> models.Model:
    from billing.models import StudioBilling

    return StudioBilling.objects.get_or_create()[0]


@factory("billing.CreditEntry")
def make_credit_entry(tenant: Any) -> models.Model:
    from billing.models import CreditEntry

    return CreditEntry.objects.create(kind=CreditEntry.Kind.ADJUSTMENT, amount=10, reference="factory")


@factory("billing.CreditUsageDay")
def make_credit_usage_day(tenant: Any) -> models.Model:
    from billing.models import CreditUsageDay

    return CreditUsageDay.objects.get_or_create(day=date(2026, 1, 2), defaults={"used": 4})[0]


@factory("billing.PriceSheet")
def make_price_sheet(tenant: Any) -> models.Model:
    from billing.models import PriceSheet

    return PriceSheet.objects.get_or_create()[0]


@factory("billing.Package")
def make_package(tenant: Any) -> models.Model:
    from billing.models import Package

    return Package.objects.create(name="Five portraits", count=5, price=Decimal("39.00"))


def _order(tenant: Any) -> tuple[Any, Any]:
    from billing.models import Order
    from galleries.models import Gallery

    portrait = make_portrait(tenant)
    gallery = Gallery.objects.create(client=portrait.double.client, title="Portraits", created_by=tenant.owner)
    order = Order.objects.create(gallery=gallery, currency="eur", amount=Decimal("9.90"))
    return order, portrait


@factory("billing.Order")
def make_order(tenant: Any) -> models.Model:
    return _order(tenant)[0]


@factory("billing.OrderItem")
def make_order_item(tenant: Any) -> models.Model:
    from billing.models import OrderItem

    order, portrait = _order(tenant)
    return OrderItem.objects.create(order=order, portrait=portrait, unit_price=Decimal("9.90"))


@factory("billing.WebhookEndpoint")
def make_webhook_endpoint(tenant: Any) -> models.Model:
    from billing.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        url="https://hooks.example.com/studio", events=["order.paid"], secret="whsec_factory"
    )


@factory("billing.WebhookDelivery")
def make_webhook_delivery(tenant: Any) -> models.Model:
    import uuid

    from billing.models import WebhookDelivery

    endpoint = make_webhook_endpoint(tenant)
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        object_ref="order:1",
        payload={"id": "x", "type": "order.paid"},
        status=WebhookDelivery.Status.DELIVERED,
    )


@factory("billing.PrintProduct")
def make_print_product(tenant: Any) -> models.Model:
    from billing.models import PrintProduct

    return PrintProduct.objects.create(
        name="Lustre 20×30", width_mm=200, height_mm=300, min_dpi=10, price=Decimal("24.00")
    )


@factory("billing.PrintFulfilment")
def make_print_fulfilment(tenant: Any) -> models.Model:
    from billing.models import OrderItem, PrintFulfilment

    order, portrait = _order(tenant)
    product = make_print_product(tenant)
    OrderItem.objects.create(
        order=order,
        portrait=portrait,
        size="print",
        product=product,
        product_name=product.name,
        crop={"x": 0, "y": 0, "w": 1, "h": 1},
        unit_price=Decimal("24.00"),
    )
    return PrintFulfilment.objects.create(
        order=order,
        ship_name="Ada Lovelace",
        ship_address={"line1": "1 Rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"},
    )


@factory("billing.Coupon")
def make_coupon(tenant: Any) -> models.Model:
    from billing.models import Coupon

    return Coupon.objects.create(code=unique("SPRING").upper(), percent_off=Decimal("10"))


@factory("billing.CouponProduct")
def make_coupon_product(tenant: Any) -> models.Model:
    from billing.models import Coupon, CouponProduct

    coupon = Coupon.objects.create(code=unique("PRINTS").upper(), percent_off=Decimal("15"), applies_to="products")
    return CouponProduct.objects.create(coupon=coupon, product=make_print_product(tenant))


@factory("billing.GallerySale")
def make_gallery_sale(tenant: Any) -> models.Model:
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import GallerySale
    from galleries.models import Gallery

    gallery = Gallery.objects.filter().first() or _order(tenant)[0].gallery
    now = timezone.now()
    return GallerySale.objects.create(
        name="Spring sale",
        gallery=gallery,
        percent_off=Decimal("20"),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=7),
    )
