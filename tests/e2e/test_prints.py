"""A client orders a print from their gallery on a phone, and the studio ships it, in a real browser: the client opens
a portrait, orders a 20×30 print, frames the crop on the watermarked preview, takes 10 % off with a coupon code,
pays on the (fake, loopback) Stripe Checkout with a shipping address (Stripe charges exactly the order's total);
the signed webhook confirms the payment; the print-ready file is made at the print's size and 300 dpi; the
studio's staff mark the order shipped with a tracking number on the order's page; the client gets an email at
each step."""

from __future__ import annotations

import io
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from PIL import Image
from playwright.sync_api import Browser, expect

from billing import coupons, prints
from billing.models import Order, OrderItem, PrintFulfilment
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import shop
from tests.conftest import TEST_PASSWORD
from tests.e2e.axe import describe, serious_violations
from tests.galleries.test_public_support import private_storage_fixture  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def _run_queued_jobs(tenant: Any) -> list[str]:
    """What the default worker would run now (this test has no worker process: the jobs run here, in order)."""
    with tenant_context(tenant.studio):
        queued = list(Job.objects.filter(state=Job.State.QUEUED).order_by("id").values_list("pk", flat=True))
    return [run_job(pk, tenant.studio.pk) for pk in queued]


def test_a_client_orders_a_20x30_print_on_a_phone_and_the_studio_ships_it(
    live_server, two_tenants, browser: Browser, private_storage: Path, fake_stripe: Any
):
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=2)
    with tenant_context(a.studio):
        prints.add_product(name="Lustre 20×30", width_mm=200, height_mm=300, price="24.00", min_dpi=10)
        prints.update_shipping(print_shipping="4.90", ship_to_countries="FR DE BE")
        coupons.create_coupon(code="PRINT10", percent_off="10", applies_to="prints", max_uses_per_client=1)
    fake_stripe.webhook_url = f"{live_server.url}/stripe/webhook/"
    portrait = scene.portraits[1]

    phone_context = browser.new_context(**PHONE)
    try:
        phone = phone_context.new_page()
        phone.goto(f"{live_server.url}{scene.url}p/{portrait.pk}/")
        phone.get_by_role("link", name="Order a print").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Order a print")
        form = phone.get_by_role("form", name="Your print")
        box = form.locator("[data-crop-box]")
        expect(box).to_have_attribute("x", "13.33")  # zoom 1: the 2:3 box, centred on the 160 × 200 preview
        phone.get_by_label("Zoom").fill("1.5")
        phone.get_by_label("Left – right").fill("0")
        phone.get_by_label("Up – down").fill("1")
        expect(box).to_have_attribute("width", "88.89")
        expect(box).to_have_attribute("x", "0.00")
        expect(box).to_have_attribute("y", "66.67")
        phone.get_by_label("Copies").fill("2")
        expect(form.locator("[data-print-total]")).to_have_text("€52.90")
        phone.get_by_label("Coupon code").fill("NOPE")
        phone.get_by_label("Coupon code").press("Tab")
        expect(form.locator("[data-print-coupon-note]")).to_have_text(
            "This code doesn't exist. Check it and try again."
        )
        phone.get_by_label("Coupon code").fill("print10")
        phone.get_by_label("Coupon code").press("Tab")
        expect(form.locator("[data-print-coupon-note]")).to_have_text("PRINT10: €4.80 off, €48.10 to pay.")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        print_page = phone.url
        if shots := os.environ.get("PRINT_SCREENSHOTS"):  # to look at the page: PRINT_SCREENSHOTS=<dir>
            phone.screenshot(path=f"{shots}/print-page-phone.png", full_page=True)
        form.get_by_role("button", name="Order and pay").click()

        # --- Stripe's hosted checkout (the fake on loopback), with the shipping address.
        expect(phone.get_by_role("heading", level=1)).to_have_text("Pay 48.10 EUR")  # 2 × 24.00 − 10 % + 4.90
        phone.get_by_label("Full name").fill("Ada Client")
        phone.get_by_label("Address line 1").fill("12 Rue de la Paix")
        phone.get_by_label("Postal code").fill("75002")
        phone.get_by_label("City").fill("Paris")
        phone.get_by_label("Country").select_option("FR")
        phone.get_by_role("button", name="Pay").click()

        # --- Back in the gallery once the signed webhook has marked the order paid.
        expect(phone.get_by_role("heading", level=1)).to_have_text(
            "Payment received — your prints are ordered", timeout=15_000
        )
        expect(phone.locator("[data-print-status]")).to_contain_text("preparing your prints")
    finally:
        phone_context.close()
    # axe-core is injected as an inline script: its own context bypasses the Content-Security-Policy (the flow
    # above ran under it, the print page's script included).
    axe_context = browser.new_context(**PHONE, bypass_csp=True)
    try:
        page = axe_context.new_page()
        page.goto(print_page)
        violations = serious_violations(page)
        assert not violations, describe(violations)
    finally:
        axe_context.close()

    with tenant_context(a.studio):
        order = Order.objects.select_related("coupon").get()
        record = PrintFulfilment.objects.get(order=order)
    assert (order.status, order.amount, order.shipping_amount) == ("paid", Decimal("48.10"), Decimal("4.90"))
    assert (order.subtotal, order.discount, order.coupon.code) == (Decimal("48.00"), Decimal("4.80"), "PRINT10")
    session = fake_stripe.sessions[order.checkout_session_id]
    assert session["amount_total"] == 4810 == int(order.amount * 100)  # what Stripe charged is the order's total
    assert session["total_details"] == {"amount_discount": 480, "amount_shipping": 490, "amount_tax": 0}
    assert (record.status, record.ship_name, record.ship_address["city"]) == ("placed", "Ada Client", "Paris")

    # The default worker's jobs: the print-ready file, and the client's emails (receipt, "placed").
    assert set(_run_queued_jobs(a)) == {"succeeded"}
    with tenant_context(a.studio):
        item = OrderItem.objects.get(order=order)
        data = item.print_file.read()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (2362, 3543)  # 20 × 30 cm at 300 dpi
        assert tuple(round(v) for v in image.info["dpi"]) == (300, 300) and image.info.get("icc_profile")
    assert item.crop == pytest.approx({"x": 0.0, "y": 1 / 3, "w": 5 / 9, "h": 2 / 3}, abs=1e-4)

    # --- The studio marks it shipped from the order's page (desktop).
    desk_context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # axe, below
    try:
        desk = desk_context.new_page()
        desk.goto(f"{live_server.url}{a.prefix}/")
        desk.get_by_label("Email").fill(a.owner.email)
        desk.get_by_label("Password").fill(TEST_PASSWORD)
        desk.get_by_role("button", name="Sign in").click()
        desk.goto(f"{live_server.url}{a.prefix}/billing/orders/")
        desk.locator(f"#order-{order.pk}").get_by_role("link", name="Prints: Placed").click()
        expect(desk.get_by_role("link", name="Download (2362 × 3543 px, 300 dpi)")).to_be_visible()
        violations = serious_violations(desk)
        assert not violations, describe(violations)
        shipping = desk.get_by_role("form", name="Mark shipped")
        shipping.get_by_label("Carrier").fill("La Poste")
        shipping.get_by_label("Tracking number").fill("6A12345678901")
        shipping.get_by_role("button", name="Mark shipped").click()
        expect(desk.get_by_text("Marked shipped: the client got the tracking number.")).to_be_visible()
        expect(desk.locator("[data-fulfilment-status]")).to_have_text("Shipped")
    finally:
        desk_context.close()

    assert set(_run_queued_jobs(a)) == {"succeeded"}
    subjects = [m.subject for m in mail.outbox if m.to == [scene.gallery.client.email]]
    [receipt] = [m for m in mail.outbox if "receipt for order" in m.subject]
    assert "Print: Lustre 20×30 × 2" in receipt.body and "Coupon PRINT10" in receipt.body and "€48.10" in receipt.body
    assert any(f"print order {order.pk} is placed" in s for s in subjects)
    [shipped] = [m for m in mail.outbox if "on their way" in m.subject]
    assert "6A12345678901" in shipped.body and "La Poste" in shipped.body
