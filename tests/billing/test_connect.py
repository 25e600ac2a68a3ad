"""The studio's price sheet and its Stripe Connect onboarding: owners and managers edit prices and packages; the
payments account is created once (idempotency key), the onboarding is an Account Link at the (fake) Stripe, the
status shows until charges are enabled, and the `account.updated` Connect webhook turns payments on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from billing import stripe_client
from billing.models import Package, PriceSheet, StudioBilling
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import deliver_all
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

PRICES = "/s/studio-a/billing/prices/"


def _billing(tenant: Any) -> StudioBilling:
    with tenant_context(tenant.studio):
        return StudioBilling.objects.get()


def test_onboarding_creates_the_account_once_and_the_webhook_turns_payments_on(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, b = two_tenants
    client.force_login(a.owner)
    page = client.get(PRICES).content.decode()
    assert 'data-connect-status="none"' in page
    response = client.post(f"{PRICES}connect/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_stripe.base_url}/onboard/acct_")
    account_id = _billing(a).connect_account_id
    assert account_id in response["Location"]
    # Again: the same account (the studio's own idempotency key), a fresh link.
    assert client.post(f"{PRICES}connect/").status_code == 302
    [create] = fake_stripe.recorded("/v1/accounts")
    assert create.idempotency_key == stripe_client.idempotency_key("connect-account", a.studio.pk)
    assert create.params["metadata"] == {"studio_id": str(a.studio.pk)} and create.params["type"] == "express"
    [link, _] = fake_stripe.recorded("/v1/account_links")
    assert link.params["account"] == account_id and link.params["type"] == "account_onboarding"
    assert link.params["return_url"].endswith("/s/studio-a/billing/prices/?connect=return")
    assert 'data-connect-status="incomplete"' in client.get(PRICES).content.decode()
    # Stripe's onboarding is done: the Connect webhook turns payments on.
    fake_stripe.onboard(account_id)
    [answer] = deliver_all(client, fake_stripe)
    assert "charges_enabled=True" in answer["message"]
    row = _billing(a)
    assert row.charges_enabled and row.details_submitted
    assert 'data-connect-status="enabled"' in client.get(PRICES).content.decode()
    with tenant_context(b.studio):
        assert not StudioBilling.objects.exists()


def test_returning_from_onboarding_reads_the_status_back(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    client.force_login(a.owner)
    client.post(f"{PRICES}connect/")
    account_id = _billing(a).connect_account_id
    fake_stripe.accounts[account_id].update(charges_enabled=True, details_submitted=True)
    assert 'data-connect-status="enabled"' in client.get(f"{PRICES}?connect=return").content.decode()
    assert _billing(a).charges_enabled


def test_an_account_update_of_an_unknown_account_changes_nothing(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    client.force_login(a.owner)
    client.post(f"{PRICES}connect/")
    stranger = fake_stripe._account({})
    fake_stripe.onboard(stranger["id"])
    [answer] = deliver_all(client, fake_stripe)
    assert "ignored" in answer["message"]
    assert not _billing(a).charges_enabled


def test_owners_and_managers_edit_the_price_sheet_and_packages(client: Client, two_tenants: Any) -> None:
    a, b = two_tenants
    client.force_login(a.owner)
    assert client.post(PRICES, {"action": "sheet", "currency": "usd", "price": "12.5"}).status_code == 302
    bad = client.post(PRICES, {"action": "sheet", "currency": "usd", "price": "0.10"})
    assert bad.status_code == 400 and "between 0.50" in bad.content.decode()
    assert client.post(PRICES, {"action": "sheet", "currency": "xxx", "price": "5"}).status_code == 400
    assert (
        client.post(PRICES, {"action": "package", "name": "5 portraits", "count": "5", "price": "39"}).status_code
        == 302
    )
    assert client.post(PRICES, {"action": "package", "name": "All", "count": "0", "price": "99"}).status_code == 302
    with tenant_context(a.studio):
        sheet = PriceSheet.objects.get()
        assert (sheet.currency, sheet.price_per_portrait) == ("usd", Decimal("12.50"))
        five = Package.objects.get(name="5 portraits")
        assert [(p.name, p.count, p.price) for p in Package.objects.order_by("price")] == [
            ("5 portraits", 5, Decimal("39.00")),
            ("All", 0, Decimal("99.00")),
        ]
    assert client.post(PRICES, {"action": "toggle", "package": five.pk}).status_code == 302
    with tenant_context(a.studio):
        assert not Package.objects.get(pk=five.pk).is_active
    with tenant_context(b.studio):
        assert not PriceSheet.objects.exists() and not Package.objects.exists()
    # Another studio's package: not found. A photographer: not found either.
    client.force_login(b.owner)
    assert client.post("/s/studio-b/billing/prices/", {"action": "toggle", "package": five.pk}).status_code == 404
    photographer = add_member(a, "photo@studio-a.example", Role.PHOTOGRAPHER)
    client.force_login(photographer)
    assert client.get(PRICES).status_code == 404
