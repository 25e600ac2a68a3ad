"""Coupons and gallery sales (issue 20): codes typed in the gallery's cart and time-limited sales, against the fake
Stripe. The amount Stripe charges is the order's total whichever way the discount goes to Checkout (the studio's
promotion code, or a single-use coupon of the computed discount), with a sale too; each refusal is a 4xx with its
own message and stores nothing; the limits hold (per client, in all, under concurrent checkouts); the report adds
up after a paid and a refunded order; the studio page and the API keep their roles and their studio."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import set_urlconf
from django.utils import timezone

from billing import coupons, orders, prices, stripe_client
from billing.models import Coupon, GallerySale, Order, PrintProduct
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import buy, deliver_all, shop
from tests.conftest import Tenant, add_member
from tests.galleries.test_public_support import private_storage_fixture, text  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _coupon(tenant: Tenant, **fields: Any) -> Coupon:
    fields.setdefault("code", "SPRING10")
    if "amount_off" not in fields:
        fields.setdefault("percent_off", Decimal("10"))
    with tenant_context(tenant.studio):
        return coupons.create_coupon(**fields)


def _session_of(response: Any) -> str:
    assert response.status_code == 303, text(response)
    return response["Location"].rsplit("/", 1)[-1]


def _order(tenant: Tenant, **lookup: Any) -> Order:
    with tenant_context(tenant.studio):
        return Order.objects.get(**lookup)


def _pay(client: Client, fake: Any, tenant: Tenant, session_id: str) -> Order:
    fake.complete(session_id)
    deliver_all(client, fake)
    return _order(tenant, checkout_session_id=session_id)


def _orders(tenant: Tenant) -> int:
    with tenant_context(tenant.studio):
        return Order.objects.count()


# --- The amount charged is the order's total --------------------------------------------------------------------


def test_a_percentage_code_goes_to_checkout_as_the_studios_promotion_code_and_the_order_is_paid(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    coupon = _coupon(a, code="spring10 ", percent_off="10", description="Spring")
    assert coupon.code == "SPRING10"
    promo = fake_stripe.promotion_codes[coupon.stripe_promotion_code_id]
    assert promo["promotion"]["coupon"] == coupon.stripe_coupon_id
    assert fake_stripe.coupons[coupon.stripe_coupon_id]["percent_off"] == 10.0
    assert all(r.idempotency_key for r in fake_stripe.recorded("/v1/coupons"))
    session_id = _session_of(buy(client, scene, scene.portraits[:3], coupon="Spring10"))
    order = _order(a, checkout_session_id=session_id)
    # 3 × 9.90 = 29.70; 10 % = 2.97; the fee on what is charged.
    assert (order.subtotal, order.discount, order.amount) == (Decimal("29.70"), Decimal("2.97"), Decimal("26.73"))
    assert order.application_fee == Decimal("2.67") and order.coupon_id == coupon.pk
    [created] = fake_stripe.recorded("/v1/checkout/sessions")
    assert created.params["discounts"] == [{"promotion_code": coupon.stripe_promotion_code_id}]
    assert created.params["payment_intent_data"]["application_fee_amount"] == "267"
    session = fake_stripe.sessions[session_id]
    assert (session["amount_subtotal"], session["total_details"]["amount_discount"]) == (2970, 297)
    assert session["amount_total"] == prices.to_minor(order.amount)
    paid = _pay(client, fake_stripe, a, session_id)
    assert paid.status == Order.Status.PAID  # the webhook's strict amount check passed
    assert promo["times_redeemed"] == 1


def test_a_fixed_amount_code_and_a_sale_add_up_to_what_stripe_charges(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    now = timezone.now()
    with tenant_context(a.studio):
        coupons.create_sale(
            name="Winter", percent_off="20", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=5)
        )
        coupons.create_sale(  # a smaller sale at the same time: the best single one applies
            name="Small",
            percent_off="5",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=5),
            gallery=scene.gallery,
        )
    coupon = _coupon(a, code="FIVE-OFF", amount_off="5.00")
    page = text(client.get(scene.url))
    assert "20 % off until" in page and "€7.92 per portrait" in page  # 9.90 less 20 %
    session_id = _session_of(buy(client, scene, scene.portraits[:3], coupon="five-off"))
    order = _order(a, checkout_session_id=session_id)
    assert (order.subtotal, order.discount, order.amount) == (Decimal("23.76"), Decimal("5.00"), Decimal("18.76"))
    [created] = fake_stripe.recorded("/v1/checkout/sessions")
    assert created.params["line_items"][0]["price_data"]["unit_amount"] == "792"
    assert created.params["discounts"] == [{"promotion_code": coupon.stripe_promotion_code_id}]
    assert fake_stripe.sessions[session_id]["amount_total"] == 1876
    assert _pay(client, fake_stripe, a, session_id).status == Order.Status.PAID
    with tenant_context(a.studio):
        assert {i.unit_price for i in order.items.all()} == {Decimal("7.92")}


def test_a_code_for_some_products_goes_as_a_single_use_coupon_of_the_computed_discount(
    two_tenants: Any, fake_stripe: Any
) -> None:
    """Prints join the cart later (the lead's part): the discount function takes its lines, and the per-order
    coupon path makes Stripe charge exactly the order's total on a mixed order."""
    a, _ = two_tenants
    shop(a, fake_stripe)
    with tenant_context(a.studio):
        lustre = PrintProduct.objects.create(name="Lustre", width_mm=200, height_mm=300, price=Decimal("24.00"))
        canvas = PrintProduct.objects.create(name="Canvas", width_mm=300, height_mm=400, price=Decimal("80.00"))
    coupon = _coupon(a, code="LUSTRE", percent_off="12.5", applies_to="products", product_ids=[lustre.pk])
    lines: list[coupons.Line] = [
        {"kind": "digital", "product_id": None, "amount": Decimal("29.70")},
        {"kind": "print", "product_id": lustre.pk, "amount": Decimal("72.10")},  # 3 × 24.03: 9.0125 off → 9.01
        {"kind": "print", "product_id": canvas.pk, "amount": Decimal("80.00")},
    ]
    with tenant_context(a.studio):
        discount = coupons.check_code(code="lustre", lines=lines, client_id=None, currency="eur")
        assert (discount.eligible, discount.amount, discount.promotion_code) == (
            Decimal("72.10"),
            Decimal("9.01"),
            False,
        )
        order = Order.objects.create(
            currency="eur", subtotal=discount.subtotal, discount=discount.amount, amount=discount.total, coupon=coupon
        )
        found = coupons.stripe_discounts(order=order, discount=discount)
    [made] = [c for c in fake_stripe.coupons.values() if c["metadata"].get("order_id") == str(order.pk)]
    assert found == [{"coupon": made["id"]}]
    assert (made["amount_off"], made["name"], made["max_redemptions"]) == (901, "LUSTRE", 1)
    stripe = stripe_client.client()
    session = stripe.checkout.Session.create(
        mode="payment",
        line_items=[
            {"price_data": {"currency": "eur", "unit_amount": cents, "product_data": {"name": "x"}}, "quantity": 1}
            for cents in (2970, 7210, 8000)
        ],
        discounts=found,
        success_url="https://x.example/ok",
        cancel_url="https://x.example/no",
    )
    assert session["amount_total"] == prices.to_minor(order.amount) == 18180 - 901


def test_the_cart_asks_what_a_code_takes_off_before_paying(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    _coupon(a, code="PEEK", percent_off="10")
    page = text(client.get(scene.url))
    assert 'name="coupon"' in page and f"{scene.url}buy/coupon/" in page
    answer = client.get(f"{scene.url}buy/coupon/", {"code": "peek", "count": "2"})
    assert answer.status_code == 200
    assert answer.json() == {
        "code": "PEEK",
        "subtotal": "19.80",
        "discount": "1.98",
        "total": "17.82",
        "shipping": "0.00",
        "message": "PEEK: €1.98 off, €17.82 to pay.",
    }
    unknown = client.get(f"{scene.url}buy/coupon/", {"code": "NOPE", "count": "2"})
    assert unknown.status_code == 404 and unknown.json()["message"].startswith("This code doesn't exist.")
    assert _orders(a) == 0


def test_an_order_made_without_a_coupon_keeps_the_invariant(two_tenants: Any) -> None:
    a, _ = two_tenants
    with tenant_context(a.studio):
        order = Order.objects.create(currency="eur", amount=Decimal("30.00"), shipping_amount=Decimal("5.00"))
    assert order.subtotal - order.discount + order.shipping_amount == order.amount == Decimal("30.00")


def test_discount_rounding_is_half_up_to_the_minor_unit_and_an_amount_is_capped() -> None:
    assert coupons.discount_minor(percent_off=Decimal("12.5"), amount_off=None, eligible_minor=2) == 0  # 0.25
    assert coupons.discount_minor(percent_off=Decimal("12.5"), amount_off=None, eligible_minor=4) == 1  # 0.5 → 1
    assert coupons.discount_minor(percent_off=Decimal("33.33"), amount_off=None, eligible_minor=990) == 330
    assert coupons.discount_minor(percent_off=None, amount_off=Decimal("15"), eligible_minor=990) == 990


# --- Refusals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "status", "message"),
    [
        ({}, "NOPE", 404, "This code doesn't exist."),
        ({"starts_at": "future"}, "SPRING10", 409, "This code can be used from"),
        ({"ends_at": "past"}, "SPRING10", 410, "This code has expired."),
        ({"min_order": "50"}, "SPRING10", 400, "This code needs an order of at least €50.00."),
        ({"applies_to": "prints"}, "SPRING10", 400, "This code doesn't apply to the items you chose."),
        ({"amount_off": "29.50"}, "SPRING10", 400, "the smallest payment possible"),
    ],
)
def test_each_refusal_has_its_status_and_message_and_stores_nothing(
    client: Client, two_tenants: Any, fake_stripe: Any, fields: dict, code: str, status: int, message: str
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    ends_past = fields.pop("ends_at", None) == "past"
    if fields.get("starts_at") == "future":
        fields["starts_at"] = timezone.now() + timedelta(days=2)
    coupon = _coupon(a, **fields)
    if ends_past:
        with tenant_context(a.studio):
            Coupon.objects.filter(pk=coupon.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    response = buy(client, scene, scene.portraits[:3], coupon=code)
    assert response.status_code == status
    assert message in text(response)
    assert _orders(a) == 0
    assert fake_stripe.recorded("/v1/checkout/sessions") == []


def test_the_per_client_limit_goes_by_single_use_coupons_and_refuses_a_second_use(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    _coupon(a, code="ONCE", percent_off="15", max_uses_per_client=1)
    session_id = _session_of(buy(client, scene, scene.portraits[:1], coupon="ONCE"))
    [created] = fake_stripe.recorded("/v1/checkout/sessions")
    [applied] = created.params["discounts"]
    assert set(applied) == {"coupon"}  # Checkout can't count per client: a coupon of this order's discount
    assert fake_stripe.coupons[applied["coupon"]]["amount_off"] == 149  # 15 % of 9.90 = 1.485 → 1.49
    assert _pay(client, fake_stripe, a, session_id).amount == Decimal("8.41")
    response = buy(client, scene, scene.portraits[1:2], coupon="once")
    assert response.status_code == 409 and "You have already used this code." in text(response)
    assert _orders(a) == 1


def test_a_pending_checkout_holds_a_use_until_it_expires(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    _coupon(a, code="LAST-ONE", percent_off="50", max_uses=1)
    first = _session_of(buy(client, scene, scene.portraits[:1], coupon="LAST-ONE"))
    response = buy(client, scene, scene.portraits[1:2], coupon="LAST-ONE")
    assert response.status_code == 409 and "used as many times as it can be" in text(response)
    fake_stripe.expire(first)
    deliver_all(client, fake_stripe)
    assert _order(a, checkout_session_id=first).status == Order.Status.EXPIRED
    second = _session_of(buy(client, scene, scene.portraits[1:2], coupon="LAST-ONE"))
    assert _pay(client, fake_stripe, a, second).status == Order.Status.PAID
    assert buy(client, scene, scene.portraits[2:3], coupon="LAST-ONE").status_code == 409


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_never_exceed_the_total_uses(two_tenants: Any, fake_stripe: Any) -> None:
    """Threads, each with its own database connection, start checkouts with the same code at the same moment: the
    coupon's row lock makes each count the others' pending orders."""
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=6)
    _coupon(a, code="RACE", percent_off="10", max_uses=2)
    barrier = threading.Barrier(6)
    outcomes: list[Any] = []

    def checkout(portrait: Any) -> None:
        set_urlconf(django_settings.STUDIO_URLCONF)  # as the middleware does for a request inside a studio
        try:
            with tenant_context(a.studio):
                barrier.wait(timeout=10)
                try:
                    orders.start_checkout(
                        gallery=scene.gallery, portrait_ids=[portrait.pk], base_url="http://t", coupon_code="RACE"
                    )
                    outcomes.append("ok")
                except coupons.CouponRefused as exc:
                    outcomes.append(exc.status)
        finally:
            set_urlconf(None)
            connection.close()

    threads = [threading.Thread(target=checkout, args=(p,)) for p in scene.portraits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == [409, 409, 409, 409, "ok", "ok"]
    with tenant_context(a.studio):
        assert Order.objects.filter(coupon__code="RACE").count() == 2


# --- Stripe's side ----------------------------------------------------------------------------------------------


def test_the_fake_stripe_enforces_a_promotion_codes_limits_like_stripe(two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    shop(a, fake_stripe)
    coupon = _coupon(a, code="TWICE", percent_off="10", max_uses=1, min_order="20")
    assert fake_stripe.promotion_codes[coupon.stripe_promotion_code_id]["restrictions"]["minimum_amount"] == 2000
    stripe = stripe_client.client()

    def session(cents: int) -> Any:
        return stripe.checkout.Session.create(
            mode="payment",
            line_items=[
                {"price_data": {"currency": "eur", "unit_amount": cents, "product_data": {"name": "x"}}, "quantity": 1}
            ],
            discounts=[{"promotion_code": coupon.stripe_promotion_code_id}],
            success_url="https://x.example/ok",
            cancel_url="https://x.example/no",
        )

    with pytest.raises(stripe.InvalidRequestError, match="minimum amount"):
        session(1990)
    completed = session(2000)
    assert (completed["amount_total"], completed["total_details"]["amount_discount"]) == (1800, 200)
    fake_stripe.complete(completed["id"])
    assert stripe.PromotionCode.retrieve(coupon.stripe_promotion_code_id)["times_redeemed"] == 1
    assert stripe.Coupon.retrieve(coupon.stripe_coupon_id)["times_redeemed"] == 1
    with pytest.raises(stripe.InvalidRequestError, match="max_redemptions"):
        session(2000)
    with tenant_context(a.studio):
        coupons.deactivate_coupon(coupon=coupon)
    assert fake_stripe.promotion_codes[coupon.stripe_promotion_code_id]["active"] is False


# --- The report -------------------------------------------------------------------------------------------------


def test_the_report_counts_paid_orders_revenue_discount_and_refunds(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    coupon = _coupon(a, code="REPORT", amount_off="2.00")
    first = _pay(client, fake_stripe, a, _session_of(buy(client, scene, scene.portraits[:2], coupon="REPORT")))
    second = _pay(client, fake_stripe, a, _session_of(buy(client, scene, scene.portraits[2:3], coupon="REPORT")))
    _session_of(buy(client, scene, scene.portraits[3:4], coupon="REPORT"))  # pending: not in the report
    with tenant_context(a.studio):
        orders.refund(order=second)
    deliver_all(client, fake_stripe)
    assert (first.amount, second.amount) == (Decimal("17.80"), Decimal("7.90"))
    with tenant_context(a.studio):
        report = coupons.report(coupon=coupon)
    assert (report.orders, report.revenue, report.discount) == (2, Decimal("25.70"), Decimal("4.00"))
    assert (report.refunds, report.refunded, report.net) == (1, Decimal("7.90"), Decimal("17.80"))
    staff = Client()
    staff.force_login(a.owner)
    row = text(staff.get(f"{a.prefix}/billing/coupons/")).split(f'id="coupon-{coupon.pk}"')[1].split("</tr>")[0]
    assert "€25.70" in row and "€4.00" in row and "1 · €7.90" in row


# --- The studio page --------------------------------------------------------------------------------------------


def test_owners_create_codes_and_sales_on_the_page_and_others_only_read(two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    shop(a, fake_stripe)
    owner = Client()
    owner.force_login(a.owner)
    url = f"{a.prefix}/billing/coupons/"
    assert url in text(owner.get(f"{a.prefix}/billing/prices/"))
    response = owner.post(url, {"action": "coupon", "code": "Summer-24", "percent_off": "15", "max_uses": "10"})
    assert response.status_code == 302, text(response)
    response = owner.post(url, {"action": "coupon", "code": "BOTH", "percent_off": "15", "amount_off": "3"})
    assert response.status_code == 400 and "not both" in text(response)
    response = owner.post(url, {"action": "coupon", "code": "SUMMER-24", "percent_off": "5"})
    assert response.status_code == 409 and "already active" in text(response)
    response = owner.post(
        url,
        {
            "action": "sale",
            "name": "Black Friday",
            "percent_off": "30",
            "starts_at": "2026-01-01T00:00",
            "ends_at": "2099-01-01T00:00",
        },
    )
    assert response.status_code == 302, text(response)
    with tenant_context(a.studio):
        coupon = Coupon.objects.get()
        sale = GallerySale.objects.get()
    assert (coupon.code, coupon.max_uses, coupon.stripe_promotion_code_id != "") == ("SUMMER-24", 10, True)
    photographer = Client()
    photographer.force_login(add_member(a, "photo@a.example", Role.PHOTOGRAPHER))
    page = text(photographer.get(url))
    assert "SUMMER-24" in page and "Black Friday" in page and 'id="new-coupon"' not in page
    for data in (
        {"action": "coupon", "code": "MINE", "percent_off": "50"},
        {"action": "deactivate", "coupon": str(coupon.pk)},
        {"action": "end_sale", "sale": str(sale.pk)},
    ):
        response = photographer.post(url, data)
        assert response.status_code == 403
        assert "Only the studio's owners and managers can change its coupons and sales." in text(response)
    with tenant_context(a.studio):
        assert Coupon.objects.filter(is_active=True).count() == 1 and GallerySale.objects.count() == 1
    assert owner.post(url, {"action": "deactivate", "coupon": str(coupon.pk)}).status_code == 302
    assert owner.post(url, {"action": "end_sale", "sale": str(sale.pk)}).status_code == 302
    with tenant_context(a.studio):
        assert not Coupon.objects.get().is_active and not GallerySale.objects.exists()


def test_a_code_isnt_stored_when_stripe_fails(two_tenants: Any, fake_stripe: Any, settings: Any) -> None:
    a, _ = two_tenants
    shop(a, fake_stripe)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing answers
    with tenant_context(a.studio), pytest.raises(coupons.CouponRefused) as refused:
        coupons.create_coupon(code="LOST", percent_off="10")
    assert refused.value.status == 502
    with tenant_context(a.studio):
        assert not Coupon.objects.exists()


# --- The API ----------------------------------------------------------------------------------------------------


def _key(tenant: Tenant) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="shop", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def test_the_api_creates_lists_and_deactivates_codes_with_the_webhooks_roles(
    two_tenants: Any, fake_stripe: Any
) -> None:
    a, b = two_tenants
    shop(a, fake_stripe)
    shop(b, fake_stripe)
    owner = Client()
    owner.force_login(a.owner)
    api = f"{a.prefix}/api"
    response = owner.post(
        f"{api}/coupons/",
        {"code": "api-10", "amount_off": "10.00", "min_order": "30", "max_uses_per_client": 1},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["code"], created["amount_off"], created["currency"]) == ("API-10", "10.00", "eur")
    assert created["report"] == {"orders": 0, "revenue": "0.00", "discount": "0.00", "refunds": 0, "refunded": "0.00"}
    bad = owner.post(f"{api}/coupons/", {"code": "X"}, content_type="application/json")
    assert bad.status_code == 400
    other = _coupon(b, code="THEIRS")
    assert owner.get(f"{api}/coupons/{other.pk}/").status_code == 404
    assert owner.post(f"{api}/coupons/{other.pk}/deactivate/").status_code == 404
    key = _key(a)
    listed = Client().get(f"{api}/coupons/", headers=key)
    assert listed.status_code == 200 and [c["code"] for c in listed.json()["results"]] == ["API-10"]
    assert Client().post(f"{api}/coupons/", {"code": "KEY-1", "percent_off": "5"}, headers=key).status_code == 403
    assert Client().post(f"{api}/coupons/{created['id']}/deactivate/", headers=key).status_code == 403
    photographer = Client()
    photographer.force_login(add_member(a, "photo@a.example", Role.PHOTOGRAPHER))
    assert photographer.get(f"{api}/coupons/").status_code == 403
    with tenant_context(a.studio):
        changed = coupons.update_coupon(
            coupon=Coupon.objects.get(pk=created["id"]), description="For the newsletter", max_uses_per_client=None
        )
    assert (changed.description, changed.max_uses_per_client) == ("For the newsletter", None)
    done = owner.post(f"{api}/coupons/{created['id']}/deactivate/")
    assert done.status_code == 200 and done.json()["is_active"] is False


def test_the_api_creates_and_ends_gallery_sales(two_tenants: Any, fake_stripe: Any) -> None:
    a, b = two_tenants
    scene = shop(a, fake_stripe)
    theirs = shop(b, fake_stripe)
    owner = Client()
    owner.force_login(a.owner)
    api = f"{a.prefix}/api/gallery-sales/"
    body = {
        "name": "Autumn",
        "percent_off": "25",
        "gallery": scene.gallery.pk,
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
    }
    response = owner.post(api, body, content_type="application/json")
    assert response.status_code == 201, response.content
    sale_id = response.json()["id"]
    wrong = owner.post(api, {**body, "gallery": theirs.gallery.pk}, content_type="application/json")
    assert wrong.status_code == 400  # another studio's gallery: as if it didn't exist
    with tenant_context(b.studio):
        other = GallerySale.objects.create(
            name="B", percent_off=Decimal("10"), starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=1)
        )
    assert owner.get(f"{api}{other.pk}/").status_code == 404
    assert owner.delete(f"{api}{other.pk}/").status_code == 404
    assert Client().delete(f"{api}{sale_id}/", headers=_key(a)).status_code == 403
    assert owner.get(api).json()["results"][0]["name"] == "Autumn"
    assert owner.delete(f"{api}{sale_id}/").status_code == 204
    with tenant_context(b.studio):
        assert GallerySale.objects.count() == 1
