"""A client's gallery in a real browser, on a phone-sized screen: the client opens the link from the studio's
message, types a wrong password then the right one, browses the watermarked previews in the full-screen viewer
(tap, arrow keys, swipes, Escape), hearts portraits, asks "more like me" on one, and sees the new portrait arrive
right after it once the render job has run. An expired link and a revoked link each get a clear page.

The portraits are real renders of the tiny demo model (CPU); the "more like me" job is run right here with
jobs.tasks.run_job (the live server runs in this process), the broker call recorded instead of sent."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from galleries.models import Gallery, GalleryEvent, GalleryPortrait, GalleryRequest
from generation import runs
from generation.models import Portrait
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Studio
from tests.conftest import Tenant
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    make_client_double,
    make_gallery,
    make_portraits,
    private_storage_fixture,
)
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
PASSWORD = "sunset-harbour"

SWIPE = """([viewer, fromX, toX]) => {
  const touch = (x) => new Touch({identifier: 1, target: viewer, clientX: x, clientY: 420});
  const fire = (type, x, down) => viewer.dispatchEvent(
    new TouchEvent(type, {touches: down ? [touch(x)] : [], changedTouches: [touch(x)], bubbles: true})
  );
  fire("touchstart", fromX, true);
  fire("touchmove", toX, true);
  fire("touchend", toX, false);
}"""


@pytest.fixture
def broker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args) or "recorded")
    return calls


def _run_queued_jobs(tenant: Tenant, timeout: float = 10.0) -> int:
    """Run every queued job of the studio (what the gpu worker would do), waiting up to `timeout` seconds for the
    page's request to create one; returns how many ran."""
    deadline = time.monotonic() + timeout
    while True:
        with tenant_context(tenant.studio):
            queued = list(Job.objects.filter(state=Job.State.QUEUED).order_by("pk").values_list("pk", flat=True))
        if queued or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for job_id in queued:
        assert run_job(job_id, tenant.studio.pk) == "succeeded"
    return len(queued)


def _swipe(page: Page, from_x: int, to_x: int) -> None:
    page.evaluate(SWIPE, [page.locator("#g-viewer").element_handle(), from_x, to_x])


def test_the_client_opens_browses_favorites_and_asks_more_like_me_on_a_phone(
    live_server, two_tenants, browser: Browser, run_settings: Path, tiny_engine: dict[str, Any], broker_calls
):
    a, _ = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(contact_email="hello@studio-a.example")
    double = ready_double(a, tiny_engine, name="Ada Client")
    template, _ = make_template(a, "Window light headshot")
    with tenant_context(a.studio):
        run = runs.start_run(double=double, items=[(template, 3)], user=a.owner)
    assert run_jobs(a, run) == ["succeeded"]
    with tenant_context(a.studio):
        portraits = list(Portrait.objects.filter(run=run).order_by("rank", "pk"))
        gallery = Gallery.objects.create(
            client=double.client,
            title="Ada's spring portraits",
            message="Hello Ada! Heart the ones you love.",
            password_hash=make_password(PASSWORD),
            expires_at=timezone.now() + timedelta(days=30),
        )
        GalleryPortrait.objects.bulk_create(
            [GalleryPortrait(gallery=gallery, portrait=p, position=i) for i, p in enumerate(portraits)]
        )
        expired = Gallery.objects.create(
            client=double.client, title="Last year", expires_at=timezone.now() - timedelta(days=2)
        )
        revoked = Gallery.objects.create(client=double.client, title="Old link", revoked_at=timezone.now())
    link = f"{live_server.url}{a.prefix}/g/{gallery.token}/"

    phone_context = browser.new_context(**PHONE)
    try:
        phone = phone_context.new_page()
        # --- The link from the message: the studio's page asks for the password.
        phone.goto(link)
        expect(phone.locator(".g-studio-name")).to_have_text("Studio A")
        expect(phone.get_by_role("heading", level=1)).to_have_text("Your private gallery")
        expect(phone.locator("body")).not_to_contain_text("Ada's spring portraits")
        phone.get_by_label("Password").fill("sunset-harbor")  # a typo
        phone.get_by_role("button", name="Open my gallery").click()
        expect(phone.get_by_role("alert")).to_contain_text("That password isn't right")
        phone.get_by_label("Password").fill(PASSWORD)
        phone.get_by_role("button", name="Open my gallery").click()

        # --- The gallery: title, welcome note, the grid of watermarked previews.
        expect(phone.get_by_role("heading", level=1)).to_have_text("Ada's spring portraits")
        expect(phone.locator(".g-message")).to_contain_text("Heart the ones you love.")
        tiles = phone.locator("#gallery-grid .g-tile")
        expect(tiles).to_have_count(3)
        expect(tiles.first.locator(".g-demo")).to_have_text("Demo model")  # the tiny model's noise says so
        first_image = tiles.first.locator("img")
        phone.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=first_image.element_handle())
        assert phone.locator(".mainnav").count() == 0
        # Mobile first: two columns on a phone, nothing wider than the screen.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = [tiles.nth(i).bounding_box() for i in range(2)]
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]

        # --- The full-screen viewer: tap, arrow keys, swipes, Escape.
        viewer = phone.get_by_role("dialog", name="Portrait viewer")
        tiles.first.locator("a.g-tile-link").click()
        expect(viewer).to_be_visible()
        counter = viewer.locator("[data-viewer-count]")
        expect(counter).to_have_text("1 of 3")
        expect(viewer.get_by_role("button", name="Close")).to_be_focused()
        viewer_image = viewer.locator("img")
        expect(viewer_image).to_have_attribute("alt", "Portrait 1")
        phone.keyboard.press("ArrowRight")
        expect(counter).to_have_text("2 of 3")
        _swipe(phone, 320, 80)  # swipe left: the next one
        expect(counter).to_have_text("3 of 3")
        _swipe(phone, 80, 320)  # swipe right: back
        expect(counter).to_have_text("2 of 3")
        expect(viewer_image).to_have_attribute("alt", "Portrait 2")
        # A heart from the viewer: the portrait shown becomes a favorite.
        viewer.get_by_role("button", name="Favorite portrait 2").click()
        expect(tiles.nth(1).get_by_role("button", name="Favorite portrait 2")).to_have_attribute("aria-pressed", "true")
        expect(viewer.get_by_role("button", name="Favorite portrait 2")).to_have_attribute("aria-pressed", "true")
        phone.keyboard.press("Escape")
        expect(viewer).to_be_hidden()
        expect(tiles.nth(1).locator("a.g-tile-link")).to_be_focused()

        # --- A heart in the grid.
        heart = tiles.first.get_by_role("button", name="Favorite portrait 1")
        heart.click()
        expect(tiles.first.get_by_role("button", name="Favorite portrait 1")).to_have_attribute("aria-pressed", "true")
        with tenant_context(a.studio):
            favorites = set(
                GalleryPortrait.objects.filter(gallery=gallery, is_favorite=True).values_list("portrait_id", flat=True)
            )
            assert favorites == {portraits[0].pk, portraits[1].pk}
            assert GalleryEvent.objects.filter(gallery=gallery, kind=GalleryEvent.Kind.FAVORITE).count() == 2

        # --- "More like me" on the first portrait: on its way, then there.
        tiles.first.get_by_role("button", name="More like me").click()
        notice = phone.locator("#gallery-requests")
        expect(notice).to_contain_text("A new version is on its way.")
        expect(tiles.first.get_by_role("button", name="On its way")).to_be_disabled()
        assert _run_queued_jobs(a) == 1
        expect(tiles).to_have_count(4, timeout=20_000)  # the notice polls until the job is done
        expect(notice).to_contain_text("Your new portrait is here.")
        with tenant_context(a.studio):
            request = GalleryRequest.objects.get(gallery=gallery)
            child = Portrait.objects.get(pk=request.result_id)
        assert child.parent_id == portraits[0].pk
        expect(tiles.nth(1)).to_have_attribute("id", f"p-{child.pk}")  # right after its source
        new_image = tiles.nth(1).locator("img")
        phone.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=new_image.element_handle())
        # The new one is in the viewer too.
        tiles.nth(1).locator("a.g-tile-link").click()
        expect(counter).to_have_text("2 of 4")
        phone.keyboard.press("Escape")

        # --- Expired and revoked links: clear pages, with the studio's contact.
        phone.goto(f"{live_server.url}{a.prefix}/g/{expired.token}/")
        expect(phone.get_by_role("heading", level=1)).to_have_text("This gallery has closed")
        expect(phone.locator("main")).to_contain_text("This gallery closed on")
        expect(phone.locator("main")).to_contain_text("hello@studio-a.example")
        phone.goto(f"{live_server.url}{a.prefix}/g/{revoked.token}/")
        expect(phone.get_by_role("heading", level=1)).to_have_text("This gallery is closed")
        expect(phone.locator("main")).to_contain_text("This gallery link was turned off by Studio A.")
        phone.goto(f"{live_server.url}{a.prefix}/g/not-a-real-gallery-token/")
        expect(phone.get_by_role("heading", level=1)).to_have_text("Gallery not found")
    finally:
        # Close the page before the database is flushed: its polling must not race the teardown.
        phone_context.close()


def test_a_big_gallery_comes_a_page_at_a_time_and_the_viewer_goes_on_across_pages(
    live_server, two_tenants, browser: Browser, private_storage: Path, settings: Any
):
    """Issue 16: a page of tiles at first; the viewer's "next" past the last tile loaded brings the next page in
    (htmx) and goes on; a heart from the viewer on a portrait of that page; scrolling loads the rest; without
    JavaScript, "Next page" and "Previous page" links."""
    settings.GALLERY_PAGE_SIZE = 3
    a, _ = two_tenants
    with tenant_context(a.studio):
        double = make_client_double(a, name="Ada Client")
        portraits = make_portraits(a, double, 8)
        gallery = make_gallery(double.client, portraits)
    link = f"{live_server.url}{a.prefix}/g/{gallery.token}/"

    phone_context = browser.new_context(**PHONE)
    try:
        phone = phone_context.new_page()
        phone.goto(link)
        tiles = phone.locator("#gallery-grid .g-tile")
        expect(tiles.nth(2)).to_have_attribute("id", f"p-{portraits[2].pk}")
        viewer = phone.get_by_role("dialog", name="Portrait viewer")
        counter = viewer.locator("[data-viewer-count]")
        tiles.nth(2).locator("a.g-tile-link").click()
        expect(counter).to_have_text("3 of 8")
        assert tiles.count() == 3  # only the first page so far: "next" below has to bring the second in
        phone.keyboard.press("ArrowRight")  # past the first page's last tile
        expect(counter).to_have_text("4 of 8")
        expect(viewer.locator("img")).to_have_attribute("alt", "Portrait 4")
        expect(viewer).to_have_attribute("data-portrait", str(portraits[3].pk))
        viewer.get_by_role("button", name="Favorite portrait 4").click()
        expect(phone.locator(f"#p-{portraits[3].pk} .g-heart")).to_have_attribute("aria-pressed", "true")
        phone.keyboard.press("ArrowLeft")
        expect(counter).to_have_text("3 of 8")
        phone.keyboard.press("Escape")
        # Scrolling to the end of the grid brings in every page, each portrait once.
        for _ in range(10):
            if tiles.count() == 8:
                break
            phone.mouse.wheel(0, 4000)
            phone.wait_for_timeout(300)
        expect(tiles).to_have_count(8)
        ids = phone.eval_on_selector_all("#gallery-grid .g-tile", "els => els.map(e => e.id)")
        assert ids == [f"p-{p.pk}" for p in portraits]
        with tenant_context(a.studio):
            assert list(
                GalleryPortrait.objects.filter(gallery=gallery, is_favorite=True).values_list("portrait_id", flat=True)
            ) == [portraits[3].pk]
    finally:
        phone_context.close()

    plain_context = browser.new_context(java_script_enabled=False, **PHONE)
    try:
        plain = plain_context.new_page()
        plain.goto(link)
        expect(plain.locator("#gallery-grid .g-tile")).to_have_count(3)
        plain.get_by_role("link", name="Next page").click()
        expect(plain.locator("#gallery-grid .g-tile")).to_have_count(3)
        expect(plain.locator("#gallery-grid .g-tile").first).to_have_attribute("id", f"p-{portraits[3].pk}")
        plain.get_by_role("link", name="Previous page").click()
        expect(plain.locator("#gallery-grid .g-tile").first).to_have_attribute("id", f"p-{portraits[0].pk}")
    finally:
        plain_context.close()


def test_the_browser_keeps_the_previews_it_has_when_the_gallery_is_opened_again(
    live_server, two_tenants, browser: Browser, private_storage: Path
):
    """Issue 16, HTTP caching where it is safe: the page itself is never cached (`private, no-store`), but its
    preview links are the same URLs when it is drawn again (tenants/media.py link_expiry), so the phone shows the
    previews it has without asking the server for them again."""
    from django.core.signals import request_started

    a, _ = two_tenants
    with tenant_context(a.studio):
        double = make_client_double(a, name="Ada Client")
        gallery = make_gallery(double.client, make_portraits(a, double, 3))
    link = f"{live_server.url}{a.prefix}/g/{gallery.token}/"
    served: list[str] = []

    def record(environ: dict[str, Any], **kwargs: Any) -> None:
        if "/media/" in environ.get("PATH_INFO", ""):
            served.append(environ["PATH_INFO"])

    from tenants.media import link_expiry

    request_started.connect(record, weak=False)
    try:
        # Two tries at most: a try that ran across a step of the links' expiry (a quarter of their hour: new
        # links then, by design) proves nothing and is done again; the next step is 15 minutes away.
        for attempt in range(2):
            served.clear()
            expiry = link_expiry(3600)
            phone_context = browser.new_context(**PHONE)
            try:
                phone = phone_context.new_page()
                phone.goto(link)
                images = phone.locator("#gallery-grid .g-tile img")
                expect(images).to_have_count(3)
                phone.wait_for_function(
                    "() => [...document.querySelectorAll('#gallery-grid img')].every(i => i.complete)"
                )
                first = sorted(served)
                assert len(first) == 3, first  # each preview fetched once
                time.sleep(1.1)  # a later second: a link that carried its signing time would be a new URL now
                phone.goto(f"{live_server.url}{a.prefix}/g/{gallery.token}/?page=1")  # the gallery opened again
                expect(images).to_have_count(3)
                phone.wait_for_function(
                    "() => [...document.querySelectorAll('#gallery-grid img')].every(i => i.complete)"
                )
                again = sorted(served)
                loaded = phone.eval_on_selector_all("#gallery-grid img", "els => els.map(i => i.naturalWidth > 0)")
            finally:
                phone_context.close()
            if link_expiry(3600) == expiry:
                break
            assert attempt == 0, "two steps of the links' expiry in one test"
    finally:
        request_started.disconnect(record)
    assert again == first  # none fetched again: the same URLs, still fresh in the browser's cache
    assert all(loaded)
