"""Stripe webhooks: signature on the raw body, each event stored once, handlers in one transaction with the event
row, 200 only after commit, out-of-order subscription events, invoice.paid granting credits once, another
studio's customer."""

from __future__ import annotations

import time
from typing import Any

import pytest

from billing import credits, webhooks
from billing.models import CreditEntry, StripeEvent, StudioBilling
from tenants.context import platform_context, tenant_context
from tests.billing.conftest import CONNECT_WEBHOOK_SECRET, make_event, post_event, sign
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db


def _customer(tenant: Tenant, customer_id: str, **fields: Any) -> None:
    with tenant_context(tenant.studio):
        StudioBilling.objects.create(stripe_customer_id=customer_id, **fields)


def _invoice(invoice_id: str, customer: str, *, sub: str = "sub_1", price: str = "price_starter") -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "subscription": sub,
        "status": "paid",
        "lines": {"data": [{"price": {"id": price}}]},
    }


def _events() -> int:
    with platform_context():
        return StripeEvent.objects.count()


def _balance(tenant: Tenant) -> int:
    with tenant_context(tenant.studio):
        return credits.balance()


def test_forged_signatures_get_400_and_store_nothing(billing_settings: Any, client: Any, tenant_a: Tenant) -> None:
    _customer(tenant_a, "cus_a")
    payload = make_event("invoice.paid", _invoice("in_1", "cus_a"), event_id="evt_forged")
    headers = [
        sign(payload, "whsec_wrong"),
        sign(payload, CONNECT_WEBHOOK_SECRET),  # the other endpoint's secret
        sign(payload, timestamp=int(time.time()) - 3600),  # too old: a replay
        "",
        "t=1,v1=deadbeef",
    ]
    for header in headers:
        response = client.post(
            "/stripe/webhook/", payload, content_type="application/json", headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400
    # A body changed after signing.
    tampered = payload.replace("in_1", "in_2")
    response = client.post(
        "/stripe/webhook/", tampered, content_type="application/json", headers={"Stripe-Signature": sign(payload)}
    )
    assert response.status_code == 400
    assert _events() == 0 and _balance(tenant_a) == 0
    assert client.get("/stripe/webhook/").status_code == 405


def test_invoice_paid_grants_the_plans_credits_once(billing_settings: Any, client: Any, tenant_a: Tenant) -> None:
    _customer(tenant_a, "cus_a", plan="starter", subscription_id="sub_1")
    payload = make_event("invoice.paid", _invoice("in_1", "cus_a"), event_id="evt_1")
    assert post_event(client, payload).status_code == 200
    assert post_event(client, payload).status_code == 200  # a duplicate delivery
    # The same invoice under its other event type (localstripe sends invoice.payment_succeeded).
    other = make_event("invoice.payment_succeeded", _invoice("in_1", "cus_a"), event_id="evt_2")
    assert post_event(client, other).status_code == 200
    assert _balance(tenant_a) == 500
    with platform_context():
        assert StripeEvent.objects.count() == 2
        first = StripeEvent.objects.get(event_id="evt_1")
        assert first.studio_id == tenant_a.studio.pk and first.processed_at and "granted 500" in first.outcome


def test_a_duplicate_invoice_event_notes_that_nothing_was_granted(
    billing_settings: Any, client: Any, tenant_a: Tenant
) -> None:
    """Finding 11 (issue 13): the second event type of an already granted invoice adds no credits, and its event
    row says so instead of "granted 500 credits"."""
    _customer(tenant_a, "cus_a", plan="starter", subscription_id="sub_1")
    assert (
        post_event(client, make_event("invoice.paid", _invoice("in_1", "cus_a"), event_id="evt_1")).status_code == 200
    )
    other = make_event("invoice.payment_succeeded", _invoice("in_1", "cus_a"), event_id="evt_2")
    assert post_event(client, other).status_code == 200
    assert _balance(tenant_a) == 500
    with platform_context():
        assert StripeEvent.objects.get(event_id="evt_1").outcome == "granted 500 credits"
        duplicate = StripeEvent.objects.get(event_id="evt_2").outcome
    assert duplicate == "invoice in_1 already granted: no credits added"
    assert "granted 500" not in duplicate


def test_an_unknown_customer_or_type_is_stored_and_ignored(
    billing_settings: Any, client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = two_tenants
    _customer(a, "cus_a", plan="starter")
    # A customer that is no studio's credits nobody.
    payload = make_event("invoice.paid", _invoice("in_x", "cus_unknown"), event_id="evt_x")
    assert post_event(client, payload).status_code == 200
    assert post_event(client, make_event("charge.dispute.created", {"id": "dp_1"}, event_id="evt_y")).status_code == 200
    assert _balance(a) == 0 and _balance(b) == 0
    with platform_context():
        assert StripeEvent.objects.get(event_id="evt_x").outcome.startswith("ignored")


def test_a_failing_handler_gets_500_stores_nothing_and_the_retry_works(
    billing_settings: Any, client: Any, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _customer(tenant_a, "cus_a", plan="starter", subscription_id="sub_1")
    calls: list[str] = []

    @webhooks.handles("invoice.paid")
    def explode(event: Any, record: StripeEvent) -> str:
        calls.append(event["id"])
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return "fine"

    try:
        payload = make_event("invoice.paid", _invoice("in_1", "cus_a"), event_id="evt_1")
        assert post_event(client, payload).status_code == 500
        assert _events() == 0 and _balance(tenant_a) == 0  # the grant rolled back with the event row
        assert post_event(client, payload).status_code == 200
        assert _events() == 1 and _balance(tenant_a) == 500
    finally:
        webhooks._HANDLERS["invoice.paid"].remove(explode)


def _sub(status: str, *, sub_id: str = "sub_1", customer: str = "cus_a", plan: str = "price_starter") -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "metadata": {},
        "items": {"data": [{"id": "si_1", "price": {"id": plan}, "current_period_start": 1, "current_period_end": 2}]},
    }


def _billing(tenant: Tenant) -> StudioBilling:
    with tenant_context(tenant.studio):
        return StudioBilling.objects.get()


def test_out_of_order_subscription_events_do_not_regress(billing_settings: Any, client: Any, tenant_a: Tenant) -> None:
    _customer(tenant_a, "cus_a")
    now = int(time.time())
    updated = make_event(
        "customer.subscription.updated", _sub("active", plan="price_studio"), event_id="e2", created=now
    )
    created = make_event("customer.subscription.created", _sub("incomplete"), event_id="e1", created=now - 10)
    deleted = make_event("customer.subscription.deleted", _sub("canceled"), event_id="e3", created=now + 10)
    late = make_event("customer.subscription.updated", _sub("active"), event_id="e4", created=now + 5)
    assert post_event(client, updated).status_code == 200
    assert post_event(client, created).status_code == 200  # older: ignored
    billing = _billing(tenant_a)
    assert billing.subscription_status == "active" and billing.plan == "studio" and billing.subscription_id == "sub_1"
    assert post_event(client, deleted).status_code == 200
    assert post_event(client, late).status_code == 200  # older than the deletion, and a cancelled one stays so
    billing = _billing(tenant_a)
    assert billing.subscription_status == "canceled"
    # A new subscription after the cancellation is taken; the old one's late deletion does not touch it.
    new = make_event("customer.subscription.created", _sub("active", sub_id="sub_2"), event_id="e5", created=now + 20)
    assert post_event(client, new).status_code == 200
    old = make_event("customer.subscription.deleted", _sub("canceled"), event_id="e6", created=now + 30)
    assert post_event(client, old).status_code == 200
    billing = _billing(tenant_a)
    assert billing.subscription_id == "sub_2" and billing.subscription_status == "active"


def test_another_studios_customer_changes_only_that_studio(
    billing_settings: Any, client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = two_tenants
    _customer(a, "cus_a", plan="starter", subscription_id="sub_a")
    _customer(b, "cus_b", plan="studio", subscription_id="sub_b")
    payload = make_event("invoice.paid", _invoice("in_b", "cus_b", sub="sub_b", price="price_studio"), event_id="e1")
    assert post_event(client, payload).status_code == 200
    assert _balance(a) == 0 and _balance(b) == 2000
    with tenant_context(b.studio):
        assert CreditEntry.objects.get().reference == "in_b"


def test_the_connect_endpoint_uses_its_own_secret(billing_settings: Any, client: Any) -> None:
    payload = make_event("account.updated", {"id": "acct_1", "object": "account"}, event_id="evt_c", account="acct_1")
    assert post_event(client, payload, path="/stripe/connect-webhook/").status_code == 400
    ok = post_event(client, payload, secret=CONNECT_WEBHOOK_SECRET, path="/stripe/connect-webhook/")
    assert ok.status_code == 200
    with platform_context():
        assert StripeEvent.objects.get().account == "acct_1"


def test_an_unconfigured_endpoint_refuses(settings: Any, client: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = make_event("invoice.paid", {"id": "in_1"}, event_id="evt_1")
    assert post_event(client, payload).status_code == 503
    assert _events() == 0
