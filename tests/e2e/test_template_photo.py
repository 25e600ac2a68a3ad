"""A template photo in a real browser, on a phone: the photographer uploads their own photo of a model as a "Template
photo" template, sees the face mask drawn over it, previews it on the studio's sample double and sees before and
after side by side; the designer stays accessible (axe) and fits the phone's screen.

The preview's gpu job runs right here with jobs.tasks.run_job (the live server runs in this process), on the tiny
demo model (real diffusers, peft and dlib on the CPU)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from engine import masks, portrait
from generation.models import Portrait, RenderRun
from jobs.models import Job
from jobs.tasks import run_job
from templates_app.models import Template, TemplateVersion
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import TEST_PASSWORD, add_member
from tests.e2e.axe import describe, serious_violations
from tests.face_fixtures import FACES
from tests.generation.runs_support import ready_double, run_settings_fixture, tiny_engine_fixture  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture
def broker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args) or "recorded")
    return calls


def _loaded(page: Any, selector: str) -> bool:
    """Whether the image decodes (its natural width becomes known within 10 s): it was served and is an image."""
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel); return img && img.complete && img.naturalWidth > 0 }",
        arg=selector,
        timeout=10_000,
    )
    return True


def test_a_photographer_puts_the_sample_double_into_their_own_photo_on_a_phone(
    live_server, two_tenants, browser: Browser, run_settings: Path, tiny_engine: dict[str, Any], broker_calls, settings
):
    settings.ENGINE_DEMO_MAX_LONG_SIDE = 400
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"
    photographer = add_member(a, "lens@studio-a.example", Role.PHOTOGRAPHER)
    ready_double(a, tiny_engine, sample=True, name="Sample Sam")

    # bypass_csp: axe-core is injected as an inline script (tests/e2e/test_accessibility.py says why).
    context = browser.new_context(**PHONE, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("response", lambda r: r.status >= 500 and errors.append(f"HTTP {r.status}: {r.url}"))
    page.goto(studio_url)
    page.get_by_label("Email").fill(photographer.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{studio_url}templates/new/")

    page.get_by_label("Name", exact=True).fill("Garden wedding")
    page.get_by_label("Prompt", exact=True).fill("wedding portrait of {subject}, garden, soft light")
    page.get_by_label("Base model").select_option("tiny-sd15")
    page.get_by_label("Steps").fill("2")
    page.get_by_label("Images per run").fill("1")
    page.get_by_label("Reference image", exact=True).set_input_files(str(FACES / "person_a_02.jpg"))
    page.get_by_label("Use the reference as").select_option("photo")
    page.get_by_label("Reference strength").fill("0.8")
    page.get_by_label("Print long side (px)").fill("3000")
    page.get_by_role("button", name="Create the template").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Garden wedding")
    with tenant_context(a.studio):
        version = Template.objects.select_related("current_version").get(name="Garden wedding").current_version
    assert version.reference_mode == TemplateVersion.ReferenceMode.PHOTO and version.long_side == 3000

    # The photographer sees which pixels will change: the photo beside the same photo with its face mask.
    mask = page.get_by_role("img", name="The same photo with the face mask tinted pink", exact=False)
    expect(mask).to_be_visible()
    assert _loaded(page, ".tpl-template-photo figure:nth-child(2) img")
    expect(page.locator(".tpl-template-photo")).to_contain_text("1 face")

    # Preview on the sample double: before (the photo) and after (the double's face in it).
    panel = page.locator(f"#template-preview-{version.pk}")
    panel.get_by_role("button", name="Preview").click()
    deadline = time.monotonic() + 10
    while True:
        with tenant_context(a.studio):
            queued = list(Job.objects.filter(state=Job.State.QUEUED).values_list("pk", flat=True))
        if queued or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(queued) == 1 and run_job(queued[0], a.studio.pk) == "succeeded"
    pair = page.locator(f"#before-after-{version.pk}")
    expect(pair).to_be_visible(timeout=15_000)  # the panel polls until the job ends
    expect(pair.get_by_role("img", name="Before: the template photo", exact=False)).to_be_visible()
    expect(pair.get_by_role("img", name="After: the same photo with Sample Sam's face put in")).to_be_visible()
    assert _loaded(page, f"#before-after-{version.pk} figure:nth-child(1) img")
    assert _loaded(page, f"#before-after-{version.pk} figure:nth-child(2) img")

    # The stored portrait: the demo model's print size (capped), the photo bit for bit outside the face mask.
    with tenant_context(a.studio):
        stored = Portrait.objects.get(run=RenderRun.objects.get(kind=RenderRun.Kind.PREVIEW))
        with stored.image.open("rb") as handle:
            from PIL import Image

            image = Image.open(handle).convert("RGB")
        with version.reference_image.open("rb") as handle:
            photo = Image.open(handle).convert("RGB")
    assert max(image.size) == 400
    expected = np.asarray(portrait.prepare_photo(photo, 400))
    keep = np.ones(expected.shape[:2], dtype=bool)
    for box in stored.faces:
        left, top, right, bottom = masks.support_box(
            tuple(box), masks.MaskSettings(version.mask_margin, version.mask_feather), image.size
        )
        keep[top:bottom, left:right] = False
    assert np.array_equal(np.asarray(image)[keep], expected[keep])

    # Accessible, fits the phone, no page errors.
    violations = serious_violations(page)
    assert not violations, describe(violations)
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, window.innerWidth)")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)
            .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > 391))
            .slice(0, 8).map(e => `${e.tagName}#${e.id}.${e.className}[${getComputedStyle(e).minWidth}] `
              + `${Math.round(e.getBoundingClientRect().left)}-${Math.round(e.getBoundingClientRect().right)}`)"""
    )
    assert width <= 390, f"the designer is {width - 390}px wider than the phone: {wide}"
    assert not errors, errors
    if os.environ.get("A11Y_SCREENSHOTS"):  # to look at the page: A11Y_SCREENSHOTS=/tmp/shots pytest ...
        page.screenshot(path=str(Path(os.environ["A11Y_SCREENSHOTS"]) / "template-photo-phone.png"), full_page=True)
    context.close()
