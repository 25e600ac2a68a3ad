"""Clients pay the studio: the cart starts a Checkout Session at the (fake) Stripe as a destination charge to the
studio's account with the platform's fee and the order's idempotency key; the signed `checkout.session.completed`
webhook marks the order paid and creates the entitlements; a refund revokes them. Forged signatures, duplicates,
events out of order and webhooks naming another studio's order change nothing they shouldn't."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from billing import orders
from billing.models import Order, OrderItem, StripeEvent
from galleries.models import Entitlement
from tenants.context import platform_context, tenant_context
from tests.billing.fake_stripe import fake_stripe_fixture, sign  # noqa: F401  (fixture)
from tests.billing.orders_support import buy, deliver, deliver_all, package, payments_on, shop
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    entitle,
    image_of,
    private_storage_fixture,
    streamed,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _order(tenant: Any, **lookup: Any) -> Order:
    with tenant_context(tenant.studio):
        return Order.objects.get(**lookup)


def _entitlements(tenant: Any, order: Order, active: bool | None = None) -> list[Entitlement]:
    with tenant_context(tenant.studio):
        qs = Entitlement.objects.filter(source="order", order_ref=str(order.pk))
        if active is not None:
            qs = qs.filter(revoked_at__isnull=active)
        return list(qs)


def _paid(client: Client, fake: Any, tenant: Any, scene: Any, portraits: list) -> Order:
    response = buy(client, scene, portraits)
    assert response.status_code == 303, response.content
    order = _order(tenant, checkout_session_id=response["Location"].rsplit("/", 1)[-1])
    fake.complete(order.checkout_session_id)
    deliver_all(client, fake)
    return _order(tenant, pk=order.pk)


def test_the_cart_starts_a_destination_charge_with_the_fee_and_the_orders_idempotency_key(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    page = text(client.get(scene.url))
    assert 'id="buy-form"' in page and "€9.90 per portrait" in page
    response = buy(client, scene, scene.portraits[:3])
    assert response.status_code == 303
    assert response["Location"].startswith(f"{fake_stripe.base_url}/pay/cs_test_")
    with tenant_context(a.studio):
        order = Order.objects.get()
        items = list(OrderItem.objects.filter(order=order).values_list("portrait_id", "size", "unit_price"))
        account = order.connect_account_id
    assert order.status == Order.Status.PENDING
    assert (order.amount, order.application_fee, order.currency) == (Decimal("29.70"), Decimal("2.97"), "eur")
    assert items == [(p.pk, "full", Decimal("9.90")) for p in scene.portraits[:3]]
    [created] = fake_stripe.recorded("/v1/checkout/sessions")
    assert created.idempotency_key == str(order.idempotency_key)
    params = created.params
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "eur",
                "unit_amount": "990",
                "product_data": {"name": "Portrait (full resolution)"},
            },
            "quantity": "3",
        }
    ]
    assert params["payment_intent_data"]["application_fee_amount"] == "297"
    assert params["payment_intent_data"]["transfer_data"] == {"destination": account}
    assert params["metadata"] == {
        "order_id": str(order.pk),
        "studio_id": str(a.studio.pk),
        "gallery_id": str(scene.gallery.pk),
    }
    assert params["success_url"].endswith(
        f"/s/studio-a/g/{scene.gallery.token}/buy/success/?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert order.checkout_session_id == fake_stripe.sessions[order.checkout_session_id]["id"]


def test_a_package_prices_the_choice_and_all_of_the_gallery(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=4)
    two = package(a, "Two portraits", 2, "15.00")
    everything = package(a, "The whole gallery", 0, "30.00")
    assert buy(client, scene, scene.portraits[:3], package=str(two.pk)).status_code == 400  # more than it holds
    assert buy(client, scene, scene.portraits[:2], package=str(two.pk)).status_code == 303
    assert buy(client, scene, [], package=str(everything.pk)).status_code == 303
    with tenant_context(a.studio):
        first, second = Order.objects.order_by("pk")
        assert (first.amount, first.items.count()) == (Decimal("15.00"), 2)
        assert (second.amount, second.items.count(), second.application_fee) == (Decimal("30.00"), 4, Decimal("3.00"))
        assert sum(i.unit_price for i in second.items.all()) == Decimal("30.00")
    sessions = fake_stripe.recorded("/v1/checkout/sessions")
    assert [s.params["line_items"][0]["price_data"]["unit_amount"] for s in sessions] == ["1500", "3000"]


def test_checkout_is_refused_until_the_studio_can_take_payments(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    payments_on(a, fake_stripe, enabled=False)
    assert 'id="buy-form"' not in text(client.get(scene.url))
    response = buy(client, scene, scene.portraits[:1])
    assert response.status_code == 409
    assert "can't take payments online yet" in text(response)
    with tenant_context(a.studio):
        assert not Order.objects.exists()
    assert fake_stripe.requests == []


def test_only_the_gallerys_visible_portraits_not_yet_entitled_can_be_bought(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, b = two_tenants
    scene = shop(a, fake_stripe)
    other_studio = shop(b, fake_stripe)
    with tenant_context(a.studio):
        entitle(scene.gallery, scene.portraits[0])
    assert buy(client, scene, [scene.other_portraits[0]]).status_code == 404  # another client's
    assert buy(client, scene, [other_studio.portraits[0]]).status_code == 404  # another studio's
    assert buy(client, scene, [scene.portraits[0]]).status_code == 409  # already entitled
    assert buy(client, scene, []).status_code == 400
    assert fake_stripe.recorded("/v1/checkout/sessions") == []
    page = text(client.get(scene.url))
    assert f'value="{scene.portraits[0].pk}" form="buy-form"' not in page
    assert f'value="{scene.portraits[1].pk}" form="buy-form"' in page


def test_the_completed_webhook_pays_the_order_and_the_client_downloads_full_resolution(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    response = buy(client, scene, scene.portraits[:3])
    session_id = response["Location"].rsplit("/", 1)[-1]
    success = f"{scene.url}buy/success/?session_id={session_id}"
    fake_stripe.complete(session_id)
    # The client is back before the webhook: the page says so and polls.
    page = text(client.get(success))
    assert "Confirming your payment" in page and "hx-trigger" in page
    [answer] = deliver_all(client, fake_stripe)
    assert "paid: 3 entitlements" in answer["message"]
    order = _order(a, checkout_session_id=session_id)
    assert order.status == Order.Status.PAID and order.paid_at is not None
    assert order.payment_intent_id.startswith("pi_") and order.email
    entitlements = _entitlements(a, order)
    assert sorted(e.portrait_id for e in entitlements) == sorted(p.pk for p in scene.portraits[:3])
    assert {(e.size, e.source, e.download_limit) for e in entitlements} == {("full", "order", 5)}
    with platform_context():
        assert StripeEvent.objects.get().studio_id == a.studio.pk
    status = text(client.get(f"{scene.url}buy/status/?session_id={session_id}"))
    assert "Payment received — your downloads" in status and "hx-trigger" not in status
    page = text(client.get(success))
    assert page.count('class="g-download-form"') == 3
    download = client.post(scene.portrait_url(scene.portraits[1], "download"), {"size": "full"})
    assert download.status_code == 303
    data = streamed(client.get(download["Location"]))
    assert data.startswith(b"\x89PNG")
    with tenant_context(a.studio):
        scene.portraits[1].refresh_from_db()
        assert data == scene.portraits[1].image.read()
    assert image_of(data).size == (160, 200)
    assert buy(client, scene, scene.portraits[1:2]).status_code == 409  # bought already


def test_a_duplicated_event_is_handled_once(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    session_id = buy(client, scene, scene.portraits[:2])["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete(session_id)
    out = fake_stripe.outbox.pop()
    assert deliver(client, out).status_code == 200
    again = deliver(client, out)
    assert again.status_code == 200 and "duplicate" in again.json()["message"]
    # The same event under another id (Stripe may send one twice): the order is paid already.
    copy = json.loads(out.body)
    copy["id"] = "evt_another_delivery"
    body = json.dumps(copy).encode()
    assert deliver(client, out, body=body, signature=sign(body, fake_stripe.webhook_secret)).status_code == 200
    order = _order(a, checkout_session_id=session_id)
    assert len(_entitlements(a, order)) == 2
    with platform_context():
        assert StripeEvent.objects.count() == 2


def test_a_forged_signature_changes_nothing(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    session_id = buy(client, scene, scene.portraits[:2])["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete(session_id)
    out = fake_stripe.outbox.pop()
    assert deliver(client, out, signature=sign(out.body, "whsec_not_the_secret")).status_code == 400
    assert deliver(client, out, signature="").status_code == 400
    tampered = out.body.replace(b'"paid"', b'"paid" ')
    assert deliver(client, out, body=tampered).status_code == 400
    order = _order(a, checkout_session_id=session_id)
    assert order.status == Order.Status.PENDING and _entitlements(a, order) == []
    with platform_context():
        assert not StripeEvent.objects.exists()


def test_a_refund_before_the_completion_grants_nothing(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    session_id = buy(client, scene, scene.portraits[:2])["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete(session_id)
    completed = fake_stripe.outbox.pop()
    import stripe

    stripe.Refund.create(payment_intent=fake_stripe.sessions[session_id]["payment_intent"], api_key="sk_test_fake")
    deliver_all(client, fake_stripe)  # charge.refunded first
    assert _order(a, checkout_session_id=session_id).status == Order.Status.REFUNDED
    assert deliver(client, completed).status_code == 200  # then the late completion
    order = _order(a, checkout_session_id=session_id)
    assert order.status == Order.Status.REFUNDED and _entitlements(a, order) == []


def test_an_expiry_after_the_payment_does_not_undo_it(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    order = _paid(client, fake_stripe, a, scene, scene.portraits[:1])
    session = dict(fake_stripe.sessions[order.checkout_session_id], status="expired")
    fake_stripe.send(fake_stripe.event("checkout.session.expired", fake_stripe.public(session)))
    deliver_all(client, fake_stripe)
    order = _order(a, pk=order.pk)
    assert order.status == Order.Status.PAID and len(_entitlements(a, order, active=True)) == 1
    # A pending order does expire.
    pending = buy(client, scene, scene.portraits[1:2])["Location"].rsplit("/", 1)[-1]
    fake_stripe.expire(pending)
    deliver_all(client, fake_stripe)
    assert _order(a, checkout_session_id=pending).status == Order.Status.EXPIRED


def test_a_refund_after_a_download_revokes_the_entitlements(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    order = _paid(client, fake_stripe, a, scene, scene.portraits[:2])
    url = scene.portrait_url(scene.portraits[0], "download")
    assert client.post(url, {"size": "full"}).status_code == 303
    with tenant_context(a.studio):
        refund_id = orders.refund(order=order)
    [refund] = fake_stripe.recorded("/v1/refunds")
    assert refund.idempotency_key and refund.params["payment_intent"] == order.payment_intent_id
    assert refund.params["reverse_transfer"] == "true" and refund.params["refund_application_fee"] == "true"
    assert refund_id in fake_stripe.refunds
    [answer] = deliver_all(client, fake_stripe)
    assert "2 entitlements revoked" in answer["message"]
    order = _order(a, pk=order.pk)
    assert order.status == Order.Status.REFUNDED and order.refunded_at is not None
    assert _entitlements(a, order, active=True) == []
    assert client.post(url, {"size": "full"}).status_code == 404
    assert "This order was refunded" in text(
        client.get(f"{scene.url}buy/success/?session_id={order.checkout_session_id}")
    )


def test_a_webhook_naming_another_studios_order_changes_nothing(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, b = two_tenants
    scene_a = shop(a, fake_stripe)
    scene_b = shop(b, fake_stripe)
    session_a = buy(client, scene_a, scene_a.portraits[:1])["Location"].rsplit("/", 1)[-1]
    session_b = buy(client, scene_b, scene_b.portraits[:2])["Location"].rsplit("/", 1)[-1]
    order_b = _order(b, checkout_session_id=session_b)
    # A signed event for A's session whose metadata names B's order and studio (or A's order with B's studio).
    for metadata in (
        {"order_id": str(order_b.pk), "studio_id": str(b.studio.pk)},
        {"order_id": str(_order(a, checkout_session_id=session_a).pk), "studio_id": str(b.studio.pk)},
    ):
        session = dict(fake_stripe.public(fake_stripe.sessions[session_a]), metadata=metadata, payment_status="paid")
        session.update(status="complete", payment_intent="pi_forged")
        fake_stripe.send(fake_stripe.event("checkout.session.completed", session))
    # An event for B's session that claims a different amount.
    session = dict(fake_stripe.public(fake_stripe.sessions[session_b]), payment_status="paid", amount_total=1)
    fake_stripe.send(fake_stripe.event("checkout.session.completed", session))
    answers = deliver_all(client, fake_stripe)
    assert all("ignored" in a["message"] for a in answers)
    assert _order(a, checkout_session_id=session_a).status == Order.Status.PENDING
    assert _order(b, pk=order_b.pk).status == Order.Status.PENDING
    with platform_context():
        assert not Entitlement.objects.filter(source="order").exists()
    # A refund of B's payment naming A's order changes neither.
    order_a = _paid(client, fake_stripe, a, scene_a, scene_a.portraits[1:2])
    charge = dict(
        fake_stripe.payment_intents[order_a.payment_intent_id]["_charge"],
        refunded=True,
        metadata={"order_id": str(order_b.pk), "studio_id": str(b.studio.pk)},
    )
    fake_stripe.send(fake_stripe.event("charge.refunded", charge))
    [answer] = deliver_all(client, fake_stripe)
    assert "ignored" in answer["message"]
    assert _order(a, pk=order_a.pk).status == Order.Status.PAID
    assert len(_entitlements(a, order_a, active=True)) == 1


def test_the_success_page_of_another_gallery_is_not_found(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, b = two_tenants
    scene = shop(a, fake_stripe)
    other = shop(b, fake_stripe)
    session_id = buy(client, scene, scene.portraits[:1])["Location"].rsplit("/", 1)[-1]
    assert client.get(f"{other.url}buy/success/?session_id={session_id}").status_code == 404
    assert client.get(f"{scene.url}buy/success/?session_id=cs_test_unknown").status_code == 404


def test_the_cart_adds_a_fixed_number_of_queries_to_the_gallery_page(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a, b = two_tenants
    small, big = shop(a, fake_stripe, count=1), shop(b, fake_stripe, count=12)
    counts = []
    for scene in (small, big):
        client.get(scene.url)  # the day's view event is recorded once
        with CaptureQueriesContext(connection) as queries:
            page = text(client.get(scene.url))
        assert page.count('form="buy-form">') == len(scene.portraits)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_payment_that_arrives_after_the_clients_erasure_pays_the_order_and_keeps_it_anonymous(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    """A client erased while their checkout was open: the late `checkout.session.completed` marks the kept order
    paid (a financial record) with no entitlement, and the buyer's email from Stripe is not stored again; a
    refund of it then answers without error."""
    from clients import services as intake

    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    session_id = buy(client, scene, scene.portraits[:2])["Location"].rsplit("/", 1)[-1]
    with tenant_context(a.studio):
        order = Order.objects.select_related("gallery__client").get(checkout_session_id=session_id)
        intake.erase_client(client=order.gallery.client, performed_by=a.owner)
    fake_stripe.complete(session_id)
    [answer] = deliver_all(client, fake_stripe)
    assert "paid: 0 entitlements" in answer["message"], answer
    order = _order(a, pk=order.pk)
    assert (order.status, order.gallery_id, order.email) == (Order.Status.PAID, None, "")
    with tenant_context(a.studio):
        assert not Entitlement.objects.filter(order_ref=str(order.pk)).exists()
        assert [item.portrait_id for item in OrderItem.objects.filter(order=order)] == [None, None]


def test_the_pay_form_is_there_when_only_a_later_page_has_portraits_to_buy(
    client: Client, two_tenants: Any, fake_stripe: Any, settings: Any
) -> None:
    """Issue 16: the gallery comes a page at a time. With every portrait of page 1 bought, the cart's form is still
    on the page, for the "Buy" boxes of the next pages (loaded as the client scrolls, they name it); once every
    portrait of the gallery is bought, it is gone."""
    settings.GALLERY_PAGE_SIZE = 2
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=4)
    with tenant_context(a.studio):
        for portrait in scene.portraits[:2]:
            entitle(scene.gallery, portrait)
    page = text(client.get(scene.url))
    assert 'id="buy-form"' in page
    assert 'form="buy-form"' not in page  # nothing to buy on page 1
    later = text(client.get(f"{scene.url}?page=2", HTTP_HX_REQUEST="true"))  # the next page, as htmx loads it
    assert f'value="{scene.portraits[2].pk}" form="buy-form"' in later
    with tenant_context(a.studio):
        for portrait in scene.portraits[2:]:
            entitle(scene.gallery, portrait)
    assert 'id="buy-form"' not in text(client.get(scene.url))
