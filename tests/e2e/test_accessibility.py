"""Accessibility, layout and console of the main pages in a real browser, at a desktop and a phone (390 px) size.

For each page: axe-core (tests/e2e/axe.py) finds no serious or critical violation, nothing is wider than the
screen (no horizontal scrolling), and the browser logs no error (console errors, uncaught exceptions, failed
requests such as a missing favicon). The data is made directly (factories), with real little JPEG files, so no
render has to run."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from clients.models import Client, ClientGroup, ConsentText, GroupMember, PhotoSet, UploadLink
from galleries.models import Gallery, GalleryPortrait
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from templates_app.models import Template, TemplateVersion
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import TEST_PASSWORD, Tenant, add_member
from tests.e2e.axe import describe, serious_violations
from tests.galleries.factories import studio_double
from tests.tenants.dashboard_data import MIN_PHOTOS, build_clients

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def _jpeg(seed: int, size: tuple[int, int] = (96, 120)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 2 + seed * 40) % 256, (y * 2) % 256, (seed * 70 + x + y) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def _portrait(tenant: Tenant, double: DigitalDouble, item: RenderRunItem, rank: int, *, pick: bool) -> Portrait:
    portrait = Portrait(
        studio_id=tenant.studio.pk,
        double=double,
        run=item.run,
        item=item,
        template_version=item.template_version,
        recipe={"prompt": "studio portrait of {subject}", "seed": rank},
        flags=["low_likeness", "badly_exposed"] if rank == 3 else [],
        is_hidden=rank == 5,
        likeness=60.0 + rank,
        rank=rank,
        is_pick=pick,
        is_demo=True,
    )
    data = _jpeg(rank)
    portrait.image.save("portrait.jpg", ContentFile(data), save=False)
    portrait.thumbnail.save("thumbnail.jpg", ContentFile(data), save=False)
    portrait.preview.save("preview.jpg", ContentFile(data), save=False)
    portrait.save()
    return portrait


def _build(tenant: Tenant) -> dict[str, str]:
    """A client with consent, a photo set and its self-upload link, a published template, a ready double with a
    render run (one item still running), a gallery of its portraits; a few jobs for the dashboard. Returns the
    pages' paths inside the studio."""
    now = timezone.now()
    with tenant_context(tenant.studio):
        ConsentText.objects.create(version=1, body="I agree that the studio uses my photos.")
        client = Client.objects.create(name="Ada Client", email="ada@example.com")  # consents on the upload page
        photo_set = PhotoSet.objects.create(client=client, retention_until=now + timedelta(days=7))
        link = UploadLink.objects.create(photo_set=photo_set, expires_at=now + timedelta(days=7))
        template = Template.objects.create(name="Window light headshot", created_by=tenant.owner)
        version = TemplateVersion.objects.create(
            template=template, number=1, prompt="studio portrait of {subject}", base_model="tiny-sd15"
        )
        template.current_version = version
        template.status = Template.Status.PUBLISHED
        template.save(update_fields=["current_version", "status"])
        training = Job.objects.create(
            kind="demo.countdown", payload={}, created_by=tenant.owner, state=Job.State.RUNNING, progress=40
        )
        double = studio_double(tenant, client=client)
        DigitalDouble.objects.filter(pk=double.pk).update(job=training, photo_set=photo_set)
        run = RenderRun.objects.create(double=double, images=4, created_by=tenant.owner)
        done_job = Job.objects.create(
            kind="demo.countdown", payload={}, created_by=tenant.owner, state=Job.State.SUCCEEDED, progress=100
        )
        done = RenderRunItem.objects.create(
            run=run, template_version=version, images=5, position=0, seeds=[1, 2, 3, 4, 5], job=done_job
        )
        item_job = Job.objects.create(
            kind="demo.countdown", payload={}, created_by=tenant.owner, state=Job.State.RUNNING, progress=55
        )
        RenderRunItem.objects.create(
            run=run, template_version=version, images=2, position=1, seeds=[6, 7], job=item_job
        )
        portraits = [_portrait(tenant, double, done, rank, pick=rank <= 2) for rank in range(1, 6)]
        for i in range(4):
            Job.objects.create(kind="demo.countdown", payload={}, created_by=tenant.owner, progress=i * 25)
        gallery = Gallery.objects.create(
            client=client,
            title="Ada's spring portraits",
            message="Hello Ada! Heart the ones you love.",
            expires_at=now + timedelta(days=30),
            run=run,
            created_by=tenant.owner,
        )
        GalleryPortrait.objects.bulk_create(
            [GalleryPortrait(gallery=gallery, portrait=p, position=i) for i, p in enumerate(portraits)]
        )
        bea = Client.objects.create(name="Bea Client", email="bea@example.com")
        group = ClientGroup.objects.create(name="The Clients")
        GroupMember.objects.create(group=group, client=client, position=1)
        GroupMember.objects.create(group=group, client=bea, position=2)
    return {
        "dashboard": "",
        "branding": "branding/",
        "client": f"clients/{client.pk}/",
        "client (new)": "clients/new/",
        "groups": "clients/groups/",
        "group (new)": "clients/groups/new/",
        "group": f"clients/groups/{group.pk}/",
        "group run (new)": f"runs/group/{group.pk}/new/",
        "photo set": f"clients/{client.pk}/sets/{photo_set.pk}/",
        "template designer": f"templates/{template.pk}/",
        "render runs": "runs/",
        "new render run": f"runs/new/{double.pk}/",
        "render run": f"runs/{run.pk}/",
        "double": f"doubles/{double.pk}/",
        "gallery (studio)": f"galleries/{gallery.pk}/",
        "gallery (client)": f"g/{gallery.token}/",
        "self-upload": f"u/{link.token}/",
    }


class Watch:
    """The page's console errors, uncaught exceptions and failed requests."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))

    def take(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def _check(page: Page, watch: Watch, name: str, url: str) -> list[str]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    problems = []
    violations = serious_violations(page)
    if violations:
        problems.append(f"{name}: {len(violations)} serious/critical axe violations\n{describe(violations)}")
    # Against the screen's width as set (a phone's window.innerWidth grows with a page that is too wide).
    screen = page.viewport_size["width"]
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if max(scroll, inner) > screen:
        problems.append(f"{name}: {max(scroll, inner) - screen}px wider than the {screen}px screen")
    problems += [f"{name}: {error}" for error in watch.take()]
    return problems


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_main_pages_are_accessible_fit_the_screen_and_log_no_errors(
    live_server, two_tenants, browser: Browser, settings: Any, tmp_path: Path, size: str
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"
    pages = _build(a)
    shots = Path(os.environ["A11Y_SCREENSHOTS"]) if os.environ.get("A11Y_SCREENSHOTS") else None
    # bypass_csp: axe-core is injected as an inline script, which the pages' Content-Security-Policy blocks. Only
    # here: the other browser tests run under the policy (tests/e2e/test_csp.py counts its violations).
    context = browser.new_context(**(DESKTOP if size == "desktop" else PHONE), bypass_csp=True)
    try:
        page = context.new_page()
        _sign_in(page, studio_url, a.owner.email)
        watch = Watch(page)
        problems: list[str] = []
        for name, path in pages.items():
            problems += _check(page, watch, name, studio_url + path)
            if shots:  # A11Y_SCREENSHOTS=<folder>: a full-page screenshot of each page, to look at
                page.screenshot(path=str(shots / f"{name.replace(' ', '-')}-{size}.png"), full_page=True)

        # The double page while its jobs run: cancelling one from there keeps the page free of htmx errors.
        page.goto(studio_url + pages["double"])
        cancel = page.get_by_role("button", name="Cancel job")
        if cancel.count():
            cancel.first.click()
            page.wait_for_timeout(2500)
            problems += [f"double (after cancel): {error}" for error in watch.take()]

        # The favicon is there, at the root too.
        for icon in ("/favicon.ico", *page.eval_on_selector_all("link[rel~=icon]", "els => els.map(e => e.href)")):
            response = page.request.get(icon if icon.startswith("http") else live_server.url + icon)
            if not response.ok:
                problems.append(f"favicon {icon}: HTTP {response.status}")
        if not page.locator("link[rel~=icon]").count():
            problems.append("the pages link no favicon")
        assert not problems, "\n".join(problems)
    finally:
        context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_busy_dashboard_is_accessible_and_fits_the_screen(
    live_server, two_tenants, browser: Browser, settings: Any, size: str
):
    """The dashboard with every "Needs you now" item, "This month" and a full "Recent activity" (the data of
    tests/tenants/dashboard_data.py), as an owner and as a photographer (the notes that say who may act)."""
    settings.INTAKE_MIN_PHOTOS = MIN_PHOTOS
    a, _ = two_tenants
    build_clients(a, 4, prefix="Client with a rather long name, to wrap on a phone")
    photographer = add_member(a, "photo@studio-a.example", Role.PHOTOGRAPHER)
    studio_url = f"{live_server.url}{a.prefix}/"
    shots = Path(os.environ["A11Y_SCREENSHOTS"]) if os.environ.get("A11Y_SCREENSHOTS") else None
    problems: list[str] = []
    for who in (a.owner, photographer):
        context = browser.new_context(**(DESKTOP if size == "desktop" else PHONE), bypass_csp=True)
        try:
            page = context.new_page()
            _sign_in(page, studio_url, who.email)
            expect(page.get_by_role("heading", name="Needs you now")).to_be_visible()
            problems += _check(page, Watch(page), f"dashboard ({who.email})", studio_url)
            if shots:
                page.screenshot(path=str(shots / f"dashboard-busy-{who.pk}-{size}.png"), full_page=True)
        finally:
            context.close()
    assert not problems, "\n".join(problems)
