"""Prints sold from the gallery and fulfilled by the studio: the crop's geometry and the print-ready file (pixel size,
300 dpi, sRGB profile), which products a portrait is offered, the checkout with the shipping address and price at
the (fake) Stripe, the paid order's fulfilment (placed → in production → shipped with tracking → delivered, the
client told at each step, `order.shipped` to the studio's webhooks), refusals, refunds and the studio's pages."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from PIL import Image, ImageCms

from billing import fulfilment, prices, prints
from billing.models import Order, OrderItem, PrintFulfilment, PrintProduct, WebhookDelivery, WebhookEndpoint
from clients.models import ClientMessage
from engine import prints as engine_prints
from galleries.models import Entitlement
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import deliver_all, shop
from tests.conftest import add_member
from tests.galleries.test_public_support import private_storage_fixture, text  # noqa: F401  (fixtures)
from tests.jobs import conftest as jobs_fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

enqueued = jobs_fixtures.enqueued  # a fixture: the jobs' enqueue recorder


# --- The engine: geometry and the file -------------------------------------------------------------------------


def test_a_20x30_print_file_is_2362_by_3543_pixels_at_300_dpi_with_an_srgb_profile() -> None:
    portrait = Image.new("RGB", (800, 1000), (200, 120, 90))
    target = engine_prints.sheet(width_mm=200, height_mm=300)
    crop = engine_prints.crop_for(portrait.size, target, zoom=1.25, x=0.2, y=0.8)
    data = engine_prints.print_file(portrait, crop, target)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (2362, 3543)
        assert tuple(round(v) for v in image.info["dpi"]) == (300, 300)
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_the_crop_keeps_the_prints_ratio_and_stays_inside_the_portrait() -> None:
    size = (800, 1000)
    target = engine_prints.sheet(width_mm=200, height_mm=300)  # 2:3, narrower than the 4:5 portrait
    full = engine_prints.crop_for(size, target)
    assert full.h == pytest.approx(1) and full.w * 800 / (full.h * 1000) == pytest.approx(2 / 3)
    assert full.x == pytest.approx((1 - full.w) / 2)
    corner = engine_prints.crop_for(size, target, zoom=2, x=1, y=0)
    assert corner.x + corner.w == pytest.approx(1) and corner.y == 0 and corner.h == pytest.approx(0.5)
    wild = engine_prints.crop_for(size, target, zoom=9, x=-3, y=7)  # clamped, never outside
    assert wild.x == 0 and wild.y + wild.h == pytest.approx(1)
    # A landscape portrait is printed on the sheet turned; a 1:1 image ratio leaves white margins.
    turned = engine_prints.sheet(width_mm=200, height_mm=300, landscape=True)
    assert (turned.width_mm, turned.height_mm) == (300, 200)
    square = engine_prints.sheet(width_mm=200, height_mm=300, crop_ratio="1:1")
    assert (square.image_width_mm, square.image_height_mm) == (200, 200)
    portrait = Image.new("RGB", (600, 600), (0, 0, 0))
    data = engine_prints.print_file(portrait, engine_prints.crop_for((600, 600), square), square, dpi=30)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (236, 354)
        assert image.getpixel((118, 5))[0] > 240 and image.getpixel((118, 177))[0] < 15  # margin white, image black


def test_a_product_needing_more_pixels_than_the_portrait_has_is_not_offered(two_tenants: Any) -> None:
    a, _ = two_tenants
    with tenant_context(a.studio):
        small = prints.add_product(name="Wallet 6×9", width_mm=60, height_mm=90, price="4", min_dpi=150)
        large = prints.add_product(name="Poster 50×70", width_mm=500, height_mm=700, price="60", min_dpi=150)
        offers = prints.offers_for(size=(1024, 1536))
        assert [o.product for o in offers] == [small]  # 1024 px over 19.7 inches is 52 ppi: not the poster
        assert offers[0].max_zoom == pytest.approx(1024 / (60 / 25.4 * 150))
        assert [o.product for o in prints.offers_for(size=(4000, 6000))] == [small, large]
        with pytest.raises(prints.PrintRefused, match="image ratio"):
            prints.add_product(name="Odd", width_mm=200, height_mm=300, price="9", crop_ratio="4/5")
        with pytest.raises(prints.PrintRefused, match="between 10 and 2000 mm"):
            prints.add_product(name="Huge", width_mm=200, height_mm=3000, price="9")


# --- Buying a print --------------------------------------------------------------------------------------------


def _print_shop(tenant: Any, fake: Any) -> tuple[Any, PrintProduct]:
    scene = shop(tenant, fake)
    with tenant_context(tenant.studio):
        product = prints.add_product(name="Lustre 20×30", width_mm=200, height_mm=300, price="24.00", min_dpi=10)
        prints.update_shipping(print_shipping="5.50", ship_to_countries="fr de")
    return scene, product


def _buy_print(client: Client, scene: Any, chosen: PrintProduct, **extra: Any) -> Any:
    data = {"portrait": scene.portraits[0].pk, "product": chosen.pk, "zoom": "1.5", "x": "0.3", "y": "0.6"}
    return client.post(f"{scene.url}buy/print/", {**data, "quantity": "2", **extra})


def _paid_print_order(client: Client, fake: Any, tenant: Any, capture: Any) -> tuple[Order, Any]:
    scene, product = _print_shop(tenant, fake)
    response = _buy_print(client, scene, product)
    assert response.status_code == 303, text(response)
    with tenant_context(tenant.studio):
        order = Order.objects.get()
    fake.complete(order.checkout_session_id)
    with capture(execute=True):
        deliver_all(client, fake)
    with tenant_context(tenant.studio):
        return Order.objects.get(pk=order.pk), scene


def test_the_print_page_offers_the_products_and_frames_the_crop_on_the_watermarked_preview(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene, product = _print_shop(a, fake_stripe)
    portrait = scene.portraits[0]
    with tenant_context(a.studio):
        prints.add_product(name="Poster 50×70", width_mm=500, height_mm=700, price="60", min_dpi=150)
    page = text(client.get(f"{scene.url}p/{portrait.pk}/"))
    assert "Order a print" in page and "from €24.00" in page
    page = text(client.get(f"{scene.url}p/{portrait.pk}/print/?zoom=1.5&x=1&y=0&quantity=2"))
    assert "Lustre 20×30" in page and "Poster" not in page  # 160 px can't fill a poster
    # 10 ppi over 20 cm needs 79 px of the 133 px wide 2:3 box: zoom up to 1.69.
    assert 'name="zoom" min="1" max="1.69" step="0.01" value="1.50"' in page
    # The box at the right edge, at the top, a 1.5th of the 2:3 box, over the 160 × 200 watermarked preview.
    assert '<rect class="pr-box" data-crop-box x="71.11" y="0.0" width="88.89" height="133.33"/>' in page
    assert "Sharpness on the print: 11 pixels per inch" in page
    assert "€53.50" in page  # 2 × 24.00 + 5.50 shipping
    assert text(client.get(f"{scene.url}p/{portrait.pk}/print/?zoom=9")).count('value="1.69"') == 1  # clamped


def test_a_print_order_asks_checkout_for_the_address_and_charges_the_shipping(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene, product = _print_shop(a, fake_stripe)
    response = _buy_print(client, scene, product)
    assert response.status_code == 303, text(response)
    with tenant_context(a.studio):
        order = Order.objects.get()
        [item] = OrderItem.objects.filter(order=order)
    assert (order.amount, order.shipping_amount, order.application_fee) == (
        Decimal("53.50"),
        Decimal("5.50"),
        Decimal("5.35"),
    )
    assert (item.size, item.product_id, item.quantity, item.unit_price) == ("print", product.pk, 2, Decimal("24"))
    assert item.product_name == "Lustre 20×30" and set(item.crop) == {"x", "y", "w", "h"}
    [created] = fake_stripe.recorded("/v1/checkout/sessions")
    params = created.params
    assert params["shipping_address_collection"] == {"allowed_countries": ["DE", "FR"]}
    assert params["shipping_options"][0]["shipping_rate_data"]["fixed_amount"] == {"amount": "550", "currency": "eur"}
    assert params["line_items"] == [
        {
            "price_data": {"currency": "eur", "unit_amount": "2400", "product_data": {"name": "Lustre 20×30"}},
            "quantity": "2",
        }
    ]
    assert fake_stripe.sessions[order.checkout_session_id]["amount_total"] == 5350


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"zoom": "3"}, 400, "would look blurred"),
        ({"quantity": "0"}, 400, "could not be read"),
        ({"x": "nan"}, 400, "could not be read"),
        ({"product": "999999"}, 409, "no longer offered"),
        ({"portrait": "other"}, 404, "not in your gallery"),
    ],
)
def test_a_print_choice_that_doesnt_hold_is_refused_with_its_reason_and_nothing_is_stored(
    client: Client, two_tenants: Any, fake_stripe: Any, change: dict, status: int, message: str
) -> None:
    a, _ = two_tenants
    scene, product = _print_shop(a, fake_stripe)
    if change.get("portrait") == "other":
        change = {"portrait": scene.other_portraits[0].pk}
    response = _buy_print(client, scene, product, **change)
    assert response.status_code == status
    assert message in text(response)
    with tenant_context(a.studio):
        assert not Order.objects.exists()
    assert not fake_stripe.recorded("/v1/checkout/sessions")


def test_a_paid_print_order_is_placed_its_file_made_and_it_goes_to_delivered_with_a_message_at_each_step(
    client: Client, two_tenants: Any, fake_stripe: Any, enqueued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    a, _ = two_tenants
    with tenant_context(a.studio):
        WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=["order.shipped"], secret="s")
    order, scene = _paid_print_order(client, fake_stripe, a, django_capture_on_commit_callbacks)
    assert order.status == Order.Status.PAID
    with tenant_context(a.studio):
        record = PrintFulfilment.objects.get(order=order)
        assert not Entitlement.objects.filter(order_ref=str(order.pk)).exists()  # a print is not a download
    assert (record.status, record.provider, record.ship_name) == ("placed", "studio", "Ada Lovelace")
    assert record.ship_address["city"] == "Paris" and record.ship_address["country"] == "FR"
    # The print file, made by its job on the default worker.
    results = [run_job(args[1], a.studio.pk) for args, _ in enqueued.calls if args[0] == "jobs.tasks.run_job"]
    assert "succeeded" in results
    with tenant_context(a.studio):
        item = OrderItem.objects.get(order=order)
        record.refresh_from_db()
        data = item.print_file.read()
    assert record.files_ready_at is not None and item.print_size == [2362, 3543]
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (2362, 3543) and tuple(round(v) for v in image.info["dpi"]) == (300, 300)
        assert image.info.get("icc_profile")

    with tenant_context(a.studio), django_capture_on_commit_callbacks(execute=False):
        with pytest.raises(fulfilment.FulfilmentRefused, match="tracking number"):
            fulfilment.advance(fulfilment=record, status="shipped")
        fulfilment.advance(fulfilment=record, status="in_production")
        fulfilment.advance(fulfilment=record, status="shipped", carrier="DHL", tracking_number="JJD0001")
        with pytest.raises(fulfilment.FulfilmentRefused, match="shipped: it can't be marked in production"):
            fulfilment.advance(fulfilment=record, status="in_production")
        fulfilment.advance(fulfilment=record, status="delivered")
        messages = list(
            ClientMessage.objects.filter(kind="print_update").order_by("id").values_list("event_key", "subject")
        )
        [shipped] = WebhookDelivery.objects.filter(event_type="order.shipped")
    assert [key for key, _ in messages] == [f"print:{order.pk}:{s}" for s in ("placed", "in_production", "shipped")] + [
        f"print:{order.pk}:delivered"
    ]
    assert "on their way" in messages[2][1]
    assert shipped.payload["data"]["object"]["fulfilment"]["tracking_number"] == "JJD0001"
    assert "Paris" not in str(shipped.payload)  # the address never leaves in a webhook


def test_a_refund_cancels_a_print_order_not_yet_shipped(
    client: Client, two_tenants: Any, fake_stripe: Any, django_capture_on_commit_callbacks: Any
) -> None:
    a, _ = two_tenants
    order, _ = _paid_print_order(client, fake_stripe, a, django_capture_on_commit_callbacks)
    fake_stripe._refund({"payment_intent": order.payment_intent_id})
    fake_stripe.send(fake_stripe._after[0])
    deliver_all(client, fake_stripe)
    with tenant_context(a.studio):
        record = PrintFulfilment.objects.get(order=order)
        assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
        assert ClientMessage.objects.filter(event_key=f"print:{order.pk}:cancelled").exists()
    assert record.status == "cancelled" and record.cancelled_at is not None


# --- The studio's pages ----------------------------------------------------------------------------------------


def test_staff_see_the_print_file_and_mark_the_order_shipped_photographers_may_not(
    client: Client, two_tenants: Any, fake_stripe: Any, enqueued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    a, b = two_tenants
    order, _ = _paid_print_order(client, fake_stripe, a, django_capture_on_commit_callbacks)
    for args, _ in enqueued.calls:
        run_job(args[1], a.studio.pk)
    staff = Client()
    staff.force_login(add_member(a, "staff@a.example", Role.STAFF))
    page = text(staff.get(f"{a.prefix}/billing/orders/"))
    assert "Prints: Placed" in page
    page = text(staff.get(f"{a.prefix}/billing/orders/{order.pk}/"))
    assert "Download (2362 × 3543 px, 300 dpi)" in page and "12 Rue de la Paix" in page
    url = f"{a.prefix}/billing/orders/{order.pk}/fulfilment/"
    refused = staff.post(url, {"status": "shipped", "tracking_number": "", "carrier": "DHL"})
    assert refused.status_code == 400 and "tracking number" in text(refused)
    bad_link = staff.post(url, {"status": "shipped", "tracking_number": "X1", "tracking_url": "javascript:alert(1)"})
    assert bad_link.status_code == 400
    done = staff.post(url, {"status": "shipped", "tracking_number": "JJD42", "carrier": "DHL"}, follow=True)
    assert done.status_code == 200 and "client got the tracking number" in text(done)
    photographer = Client()
    photographer.force_login(add_member(a, "photo@a.example", Role.PHOTOGRAPHER))
    assert photographer.post(url, {"status": "delivered"}).status_code == 403
    other = Client()
    other.force_login(b.owner)
    assert other.get(f"{b.prefix}/billing/orders/{order.pk}/").status_code == 404
    assert other.post(f"{b.prefix}/billing/orders/{order.pk}/fulfilment/", {"status": "delivered"}).status_code == 404
    with tenant_context(a.studio):
        assert PrintFulfilment.objects.get(order=order).status == "shipped"


def test_owners_add_print_products_and_shipping_on_the_prices_page(client_a: Client, tenant_a: Any) -> None:
    url = f"{tenant_a.prefix}/billing/prices/"
    product = {"action": "print_product", "name": "Canvas 30×40", "kind": "canvas", "finish": "Matte"}
    response = client_a.post(url, {**product, "width_mm": "300", "height_mm": "400", "min_dpi": "100", "price": "79"})
    assert response.status_code == 302
    refused = client_a.post(url, {**product, "width_mm": "3", "height_mm": "400", "min_dpi": "100", "price": "79"})
    assert refused.status_code == 400 and "between 10 and 2000 mm" in text(refused)
    assert (
        client_a.post(url, {"action": "shipping", "print_shipping": "4.90", "ship_to_countries": "fr, be"}).status_code
        == 302
    )
    bad = client_a.post(url, {"action": "shipping", "print_shipping": "4.90", "ship_to_countries": "France"})
    assert bad.status_code == 400
    page = text(client_a.get(url)).split("</title>", 1)[1]  # in the page's content, not in its title
    assert "Canvas 30×40" in page and "300 × 400 mm" in page and 'value="BE FR"' in page
    with tenant_context(tenant_a.studio):
        assert PrintProduct.objects.get().kind == "canvas"


# --- The API ---------------------------------------------------------------------------------------------------


def _key(tenant: Any) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="shipping", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def test_the_api_manages_print_products_and_moves_a_print_order_on(
    client: Client, two_tenants: Any, fake_stripe: Any, enqueued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    a, b = two_tenants
    order, _ = _paid_print_order(client, fake_stripe, a, django_capture_on_commit_callbacks)
    for args, _ in enqueued.calls:
        run_job(args[1], a.studio.pk)
    owner, key, key_b = Client(), _key(a), _key(b)
    owner.force_login(a.owner)
    products = f"{a.prefix}/api/print-products/"
    body = {"name": "Canvas 40×60", "kind": "canvas", "width_mm": 400, "height_mm": 600, "price": "89.00"}
    created = owner.post(products, body, content_type="application/json")
    assert created.status_code == 201 and created.json()["min_dpi"] == 150
    product_id = created.json()["id"]
    refused = owner.post(products, {**body, "crop_ratio": "wide"}, content_type="application/json")
    assert refused.status_code == 400 and "image ratio" in refused.json()["error"]["message"]
    assert Client().post(products, body, content_type="application/json", headers=key).status_code == 403
    assert len(Client().get(products, headers=key).json()["results"]) == 2
    off = owner.patch(f"{products}{product_id}/", {"is_active": False}, content_type="application/json")
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert Client().get(f"{b.prefix}/api/print-products/{product_id}/", headers=key_b).status_code == 404

    # The studio's shipping tool, with an API key: the order's files, then "shipped".
    detail = Client().get(f"{a.prefix}/api/orders/{order.pk}/", headers=key).json()
    assert detail["fulfilment"]["status"] == "placed" and detail["shipping_amount"] == "5.50"
    [item] = detail["items"]
    assert item["product_name"] == "Lustre 20×30" and item["quantity"] == 2 and item["print_size"] == [2362, 3543]
    data = b"".join(Client().get(item["print_file"], headers=key).streaming_content)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (2362, 3543)
    url = f"{a.prefix}/api/orders/{order.pk}/fulfilment/"
    missing = Client().post(url, {"status": "shipped"}, content_type="application/json", headers=key)
    assert missing.status_code == 400 and "tracking number" in missing.json()["error"]["message"]
    shipped = Client().post(
        url,
        {"status": "shipped", "tracking_number": "JJD7", "tracking_url": "https://track.example/JJD7"},
        content_type="application/json",
        headers=key,
    )
    assert shipped.status_code == 200 and shipped.json()["fulfilment"]["tracking_number"] == "JJD7"
    again = Client().post(
        url, {"status": "shipped", "tracking_number": "X"}, content_type="application/json", headers=key
    )
    assert again.status_code == 409
    assert (
        Client()
        .post(
            f"{b.prefix}/api/orders/{order.pk}/fulfilment/",
            {"status": "delivered"},
            content_type="application/json",
            headers=key_b,
        )
        .status_code
        == 404
    )
    listed = Client().get(f"{a.prefix}/api/orders/", headers=key).json()["results"]
    assert listed[0]["fulfilment_status"] == "shipped"


def test_the_clients_erasure_clears_the_shipping_address_and_keeps_the_order(
    client: Client, two_tenants: Any, fake_stripe: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from clients.services import erase_client

    a, _ = two_tenants
    order, scene = _paid_print_order(client, fake_stripe, a, django_capture_on_commit_callbacks)
    with tenant_context(a.studio):
        receipt = erase_client(client=scene.gallery.client, performed_by=a.owner)
        record = PrintFulfilment.objects.get(order=order)
        kept = Order.objects.get(pk=order.pk)
    assert (record.ship_name, record.ship_address, record.ship_phone) == ("", {}, "")
    assert (kept.status, kept.amount, kept.gallery_id) == ("paid", Decimal("53.50"), None)
    assert receipt.counts["shipping_addresses_erased"] == 1


def test_an_address_guessing_coupon_codes_is_stopped_even_with_a_right_one(
    client: Client, two_tenants: Any, fake_stripe: Any, settings: Any
) -> None:
    from billing import coupons

    a, _ = two_tenants
    settings.COUPON_GUESS_RATE = "2/1h"
    scene, product = _print_shop(a, fake_stripe)
    with tenant_context(a.studio):
        coupons.create_coupon(code="RIGHT", percent_off="10")
    check = f"{scene.url}buy/coupon/"
    assert client.get(check, {"code": "RIGHT", "product": product.pk}).status_code == 200  # a right code isn't a guess
    for guess in ("AAAA", "BBBB"):
        assert client.get(check, {"code": guess, "product": product.pk}).status_code == 404
    blocked = client.get(check, {"code": "RIGHT", "product": product.pk})
    assert blocked.status_code == 429 and "Too many codes were tried from here" in blocked.json()["message"]
    refused = _buy_print(client, scene, product, coupon="RIGHT")
    assert refused.status_code == 429 and re.search(r"Try again in \d+ minutes?\.", text(refused))
    assert _buy_print(client, scene, product).status_code == 303  # without a code, buying goes on


def test_the_price_sheet_and_packages_by_api_as_on_the_prices_page(two_tenants: Any) -> None:
    a, b = two_tenants
    owner, key, key_b = Client(), _key(a), _key(b)
    owner.force_login(a.owner)
    sheet = f"{a.prefix}/api/price-sheet/"
    assert Client().get(sheet, headers=key).json()["currency"] == "eur"
    changed = owner.patch(
        sheet, {"price_per_portrait": "12.50", "ship_to_countries": ["fr", "BE"]}, content_type="application/json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["price_per_portrait"] == "12.50" and changed.json()["ship_to_countries"] == ["BE", "FR"]
    assert changed.json()["can_take_payments"] is False
    refused = owner.patch(sheet, {"price_per_portrait": "0.10"}, content_type="application/json")
    assert refused.status_code == 400 and "between 0.50" in refused.json()["error"]["message"]
    assert Client().patch(sheet, {"currency": "usd"}, content_type="application/json", headers=key).status_code == 403
    staff = Client()
    staff.force_login(add_member(a, "staff@a.example", Role.STAFF))
    assert staff.patch(sheet, {"currency": "usd"}, content_type="application/json").status_code == 403

    packages = f"{a.prefix}/api/packages/"
    made = owner.post(packages, {"name": "Five", "count": 5, "price": "39.00"}, content_type="application/json")
    assert made.status_code == 201, made.content
    package_id = made.json()["id"]
    assert owner.patch(f"{packages}{package_id}/", {"price": "1"}, content_type="application/json").status_code == 400
    off = owner.patch(f"{packages}{package_id}/", {"is_active": False}, content_type="application/json")
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert Client().get(f"{b.prefix}/api/packages/{package_id}/", headers=key_b).status_code == 404
    with tenant_context(a.studio):
        assert prices.price_sheet().price_per_portrait == Decimal("12.50")
