"""The studio's plan against localstripe (a stateful fake Stripe on loopback, driven by the real stripe library):
customer and subscription with idempotency keys, invoices, plan change; and the billing page's permissions."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from billing import credits, subscriptions
from billing.models import StudioBilling
from tenants.context import tenant_context
from tests.billing.conftest import make_event, post_event
from tests.conftest import Tenant, add_member

pytestmark = pytest.mark.django_db


def _plans(localstripe_url: str) -> None:
    stripe.api_key, stripe.api_base = "sk_test_local", localstripe_url
    for plan_id, amount in (("price_starter", 4900), ("price_studio", 14900)):
        try:
            stripe.Plan.retrieve(plan_id)
        except stripe.InvalidRequestError:
            stripe.Plan.create(id=plan_id, amount=amount, currency="eur", interval="month", product={"name": plan_id})


def _card(customer_id: str) -> None:
    token = stripe.Token.create(card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"})
    stripe.Customer.create_source(customer_id, source=token["id"])


def test_subscribe_change_plan_and_invoices(
    billing_settings: Any, stripe_local: str, client: Any, tenant_a: Tenant
) -> None:
    _plans(stripe_local)
    with tenant_context(tenant_a.studio):
        billing = subscriptions.ensure_customer(studio=tenant_a.studio, email="owner@studio-a.example")
        again = subscriptions.ensure_customer(studio=tenant_a.studio)
        assert billing.stripe_customer_id.startswith("cus_") and again.stripe_customer_id == billing.stripe_customer_id
        _card(billing.stripe_customer_id)
        billing = subscriptions.subscribe(studio=tenant_a.studio, plan_key="starter")
        assert billing.subscription_id.startswith("sub_") and billing.plan == "starter"
        assert billing.subscription_status == "active" and billing.current_period_end is not None
        invoices = subscriptions.invoices()
        assert len(invoices) == 1 and invoices[0]["status"] == "paid" and invoices[0]["total"] == 49.0
        invoice_id = invoices[0]["id"]

    # Stripe tells us the invoice was paid (signed with the library's scheme): the plan's credits, once.
    invoice = stripe.Invoice.retrieve(invoice_id)
    payload = make_event("invoice.payment_succeeded", invoice.to_dict(), event_id="evt_local_1")
    assert post_event(client, payload).status_code == 200
    assert post_event(client, payload).status_code == 200
    with tenant_context(tenant_a.studio):
        assert credits.balance() == 500

    # Changing plan keeps one subscription.
    client.force_login(tenant_a.owner)
    response = client.post(f"{tenant_a.prefix}/billing/plan/", {"plan": "studio"})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        billing = StudioBilling.objects.get()
        assert billing.plan == "studio" and billing.subscription_status == "active"
    sub = stripe.Subscription.retrieve(billing.subscription_id)
    assert sub["items"]["data"][0]["plan"]["id"] == "price_studio"

    page = client.get(f"{tenant_a.prefix}/billing/").content.decode()
    assert 'id="credits-left">500<' in page and "49.00 EUR" in page


def test_subscription_webhook_from_localstripe_payload(
    billing_settings: Any, stripe_local: str, client: Any, tenant_a: Tenant
) -> None:
    _plans(stripe_local)
    with tenant_context(tenant_a.studio):
        billing = subscriptions.ensure_customer(studio=tenant_a.studio)
        _card(billing.stripe_customer_id)
        billing = subscriptions.subscribe(studio=tenant_a.studio, plan_key="starter")
    sub = stripe.Subscription.retrieve(billing.subscription_id)
    stripe.Subscription.delete(billing.subscription_id)
    canceled = stripe.Subscription.retrieve(billing.subscription_id)
    now = int(time.time())
    assert (
        post_event(
            client, make_event("customer.subscription.deleted", canceled.to_dict(), event_id="e2", created=now)
        ).status_code
        == 200
    )
    assert (
        post_event(
            client, make_event("customer.subscription.updated", sub.to_dict(), event_id="e1", created=now - 1)
        ).status_code
        == 200
    )
    with tenant_context(tenant_a.studio):
        assert StudioBilling.objects.get().subscription_status == "canceled"


def test_billing_page_permissions(billing_settings: Any, client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    photographer = add_member(a, "staff@studio-a.example", "staff")
    client.force_login(photographer)
    page = client.get(f"{a.prefix}/billing/")
    assert page.status_code == 200 and "Credits left" in page.content.decode()
    assert "Change plan" not in page.content.decode() and "Subscribe" not in page.content.decode()
    assert client.post(f"{a.prefix}/billing/plan/", {"plan": "studio"}).status_code == 403
    assert client.post(f"{a.prefix}/billing/payment-method/").status_code == 403
    client.force_login(b.owner)
    assert client.get(f"{a.prefix}/billing/").status_code == 404
    # Stripe unreachable (the test settings point it at a closed port): the page still shows, with a message.
    client.force_login(a.owner)
    page = client.get(f"{a.prefix}/billing/")
    assert page.status_code == 200 and "Subscribe" in page.content.decode()
    response = client.post(f"{a.prefix}/billing/payment-method/")
    assert response.status_code == 302  # back to the page: choose a plan first
