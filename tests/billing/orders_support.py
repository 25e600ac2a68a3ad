"""Helpers of the order tests (no tests here): a studio whose payments account is on, a gallery of real
portraits, and delivering the fake Stripe's queued webhooks through the real endpoints with the test client."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client

from billing.models import Package, PriceSheet, StudioBilling
from tenants.context import tenant_context
from tests.billing.fake_stripe import FakeStripe, Outgoing
from tests.conftest import Tenant
from tests.galleries.test_public_support import Scene, make_scene


def payments_on(tenant: Tenant, fake: FakeStripe, *, enabled: bool = True, price: str = "9.90") -> str:
    """The studio's connected account (at the fake too) with charges enabled, and its price sheet."""
    account = fake._account({"type": "express"})
    account.update(charges_enabled=enabled, details_submitted=enabled)
    with tenant_context(tenant.studio):
        StudioBilling.objects.update_or_create(
            defaults={"connect_account_id": account["id"], "charges_enabled": enabled, "details_submitted": enabled}
        )
        PriceSheet.objects.update_or_create(defaults={"currency": "eur", "price_per_portrait": Decimal(price)})
    return account["id"]


def shop(tenant: Tenant, fake: FakeStripe, count: int = 4, **gallery_fields: Any) -> Scene:
    payments_on(tenant, fake)
    return make_scene(tenant, count, **gallery_fields)


def package(tenant: Tenant, name: str, count: int, price: str) -> Package:
    with tenant_context(tenant.studio):
        return Package.objects.create(name=name, count=count, price=Decimal(price))


def deliver(client: Client, out: Outgoing, *, signature: str | None = None, body: bytes | None = None) -> Any:
    url = "/stripe/connect-webhook/" if out.connect else "/stripe/webhook/"
    return client.post(
        url,
        data=body if body is not None else out.body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else out.signature,
    )


def deliver_all(client: Client, fake: FakeStripe) -> list[Any]:
    """POST every queued webhook (oldest first) and empty the outbox; each must get 200."""
    answers = []
    while fake.outbox:
        out = fake.outbox.pop(0)
        response = deliver(client, out)
        assert response.status_code == 200, response.content
        answers.append(response.json())
    return answers


def buy(client: Client, scene: Scene, portraits: list, **extra: Any) -> Any:
    data = {"portrait": [str(p.pk) for p in portraits], **extra}
    return client.post(f"{scene.url}buy/", data)
