"""A client buys portraits in their gallery, in a real browser on a phone-sized screen: they pick three portraits,
the cart shows the total, "Pay" takes them to the (fake, loopback) Stripe hosted checkout page, they pay, come
back to the success page (which waits for the signed `checkout.session.completed` webhook the fake posts to the
live server a moment later) and download the three portraits at full resolution: the stored PNGs, unwatermarked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from billing.models import Order
from galleries.models import Entitlement
from tenants.context import tenant_context
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import shop
from tests.galleries.test_public_support import image_of, private_storage_fixture  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def test_a_client_buys_three_portraits_and_downloads_them_at_full_resolution(
    live_server, two_tenants, browser: Browser, private_storage: Path, fake_stripe: Any
):
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=4)
    fake_stripe.webhook_url = f"{live_server.url}/stripe/webhook/"
    fake_stripe.webhook_delay = 1.5  # the client is back before the webhook
    with tenant_context(a.studio):
        stored = {p.pk: p.image.read() for p in scene.portraits[:3]}

    phone_context = browser.new_context(**PHONE, accept_downloads=True)
    try:
        phone = phone_context.new_page()
        phone.goto(f"{live_server.url}{scene.url}")
        tiles = phone.locator("#gallery-grid .g-tile")
        expect(tiles).to_have_count(4)
        cart = phone.get_by_role("form", name="Buy portraits")
        expect(cart).to_contain_text("0 portraits")
        for number in (1, 2, 3):
            phone.get_by_role("checkbox", name=f"Buy portrait {number}").check()
        expect(cart).to_contain_text("3 portraits · €29.70")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        cart.get_by_role("button", name="Pay").click()

        # --- Stripe's hosted checkout (the fake on loopback).
        expect(phone.get_by_role("heading", level=1)).to_have_text("Pay 29.70 EUR")
        assert phone.url.startswith(f"{fake_stripe.base_url}/pay/")
        phone.get_by_role("button", name="Pay").click()

        # --- Back in the gallery: confirming, then the downloads as soon as the webhook has paid the order.
        expect(phone.get_by_role("heading", level=1)).to_have_text("Payment received — your downloads", timeout=15_000)
        with tenant_context(a.studio):
            order = Order.objects.get()
            assert order.status == Order.Status.PAID
            assert Entitlement.objects.filter(order_ref=str(order.pk), revoked_at__isnull=True).count() == 3
        assert [d.status for d in fake_stripe.deliveries] == [200]
        grid = phone.locator("#order-grid .g-tile")
        expect(grid).to_have_count(3)
        for index, portrait in enumerate(scene.portraits[:3]):
            tile = phone.locator(f"#order-grid #p-{portrait.pk}")
            with phone.expect_download() as info:
                tile.get_by_role("button", name=f"Download portrait {index + 1}").click()
            data = Path(info.value.path()).read_bytes()
            assert data.startswith(b"\x89PNG") and data == stored[portrait.pk]  # the PNG itself: no watermark
            assert image_of(data).size == (160, 200)
    finally:
        phone_context.close()
