"""Without Stripe keys (the embedded default) payments are off, and every page says so instead of hiding it or
offering a button that can only fail: the studio's billing and payments pages name what the operator sets, the
actions answer 503 with the same words and call nobody, the client's gallery says buying isn't open yet. One
plan state is shown everywhere: the dashboard's badge and the billing page say the same."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from billing import stripe_client
from billing.models import StudioBilling
from tenants.context import tenant_context
from tests.galleries.test_public_support import make_scene, private_storage_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_stripe(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = ""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("nothing may be sent to Stripe while it isn't configured")

    monkeypatch.setattr(stripe_client, "client", refuse)


def test_is_configured_by_a_key_or_a_local_fake(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "", ""
    assert not stripe_client.is_configured()
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    assert stripe_client.is_configured()
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "", "http://127.0.0.1:12111"
    assert stripe_client.is_configured()


def test_the_billing_page_says_what_to_set_and_offers_no_subscribe_button(client_a: Client, no_stripe: None) -> None:
    html = client_a.get("/s/studio-a/billing/").content.decode()
    assert 'id="stripe-not-configured"' in html and "STRIPE_SECRET_KEY" in html
    assert "Subscribe" not in html and "billing_change_plan" not in html
    assert '<strong id="plan-label">No plan yet</strong>' in html


def test_subscribing_answers_503_with_the_hint_and_calls_nobody(client_a: Client, no_stripe: None) -> None:
    response = client_a.post("/s/studio-a/billing/plan/", {"plan": "starter"}, follow=True)
    assert escape(stripe_client.SETUP_HINT) in response.content.decode()
    assert "try again" not in response.content.decode().lower()
    response = client_a.post("/s/studio-a/billing/payment-method/", follow=True)
    assert "try again" not in response.content.decode().lower()


def test_the_payments_page_says_payments_are_off_and_onboarding_is_refused(client_a: Client, no_stripe: None) -> None:
    html = client_a.get("/s/studio-a/billing/prices/").content.decode()
    assert 'data-connect-status="not-configured"' in html and "STRIPE_SECRET_KEY" in html
    assert "Set up payments with Stripe" not in html
    response = client_a.post("/s/studio-a/billing/prices/connect/", follow=True)
    assert "STRIPE_SECRET_KEY" in response.content.decode()
    assert "Try again in a minute" not in response.content.decode()


def test_the_clients_gallery_says_buying_is_not_open_yet(
    client: Client, two_tenants: Any, no_stripe: None, private_storage: Any
) -> None:
    a, _ = two_tenants
    scene = make_scene(a)
    with tenant_context(a.studio):  # even an account that took charges before: no keys, no buying
        StudioBilling.objects.update_or_create(defaults={"connect_account_id": "acct_1", "charges_enabled": True})
    html = client.get(scene.url).content.decode()
    assert "data-cart-closed" in html and "isn't open yet" in html
    assert 'id="buy-form"' not in html


def test_the_dashboard_badge_and_the_billing_page_say_the_same_plan(client_a: Client, tenant_a: Any) -> None:
    dashboard = client_a.get(f"{tenant_a.prefix}/").content.decode()
    assert "No plan yet" in dashboard and "Trial plan" not in dashboard
    with tenant_context(tenant_a.studio):
        StudioBilling.objects.update_or_create(defaults={"plan": "starter", "subscription_status": "past_due"})
    dashboard = client_a.get(f"{tenant_a.prefix}/").content.decode()
    billing = client_a.get(f"{tenant_a.prefix}/billing/").content.decode()
    assert "Starter plan (past due)" in dashboard
    assert '<strong id="plan-label">Starter plan (past due)</strong>' in billing
