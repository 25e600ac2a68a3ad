"""Templates and render runs in a real browser, on the tiny demo model (real diffusers and peft on the CPU).

A photographer creates a template, previews it on the studio's sample double and publishes it; staff run it for
a client's digital double; the portraits appear under the job's progress bar with likeness scores and ranks;
"More like me" makes a new portrait whose recipe has a higher identity weight, with the same seed.

The gpu jobs are run right here with jobs.tasks.run_job (the live server runs in this process), so no
worker is needed; the broker call is recorded instead of sent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from generation import crypto
from generation.models import DigitalDouble, Portrait, RenderRun
from jobs.models import Job
from jobs.tasks import run_job
from templates_app.models import Template
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import TEST_PASSWORD, Tenant, add_member
from tests.face_fixtures import FACES
from tests.generation.runs_support import ready_double, run_settings_fixture, tiny_engine_fixture  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROMPT = "studio portrait of {subject}, soft window light, 85mm"


@pytest.fixture
def broker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args) or "recorded")
    return calls


def _with_centroid(tenant: Tenant, double: DigitalDouble) -> None:
    """Give the double the identity centroid of real face photos (as training would), when dlib is here."""
    try:
        from PIL import Image

        from engine.likeness import identity_centroid

        photos = [Image.open(FACES / f"person_a_0{i}.jpg").convert("RGB") for i in range(1, 4)]
        centroid = identity_centroid(photos)
    except (ImportError, RuntimeError, FileNotFoundError):
        return
    if centroid is None:
        return
    with tenant_context(tenant.studio):
        DigitalDouble.objects.filter(pk=double.pk).update(
            centroid_encrypted=crypto.encrypt(np.asarray(centroid, dtype=np.float32).tobytes())
        )


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
        run_job(job_id, tenant.studio.pk)
    return len(queued)


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_photographer_designs_previews_and_publishes_staff_run_it_and_ask_more_like_me(
    live_server, two_tenants, browser: Browser, run_settings: Path, tiny_engine: dict[str, Any], broker_calls
):
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"
    photographer = add_member(a, "lens@studio-a.example", Role.PHOTOGRAPHER)
    staff = add_member(a, "desk@studio-a.example", Role.STAFF)
    sample = ready_double(a, tiny_engine, sample=True, name="Sample Sam")
    double = ready_double(a, tiny_engine, name="Ada Client")
    _with_centroid(a, double)

    # --- The photographer designs a template on the tiny demo model (2 steps keep the CPU renders short).
    designer = browser.new_context().new_page()
    _sign_in(designer, studio_url, photographer.email)
    designer.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(designer.get_by_role("heading", level=1)).to_have_text("Templates")
    designer.get_by_role("link", name="New template").first.click()
    designer.get_by_label("Name", exact=True).fill("Window light headshot")
    designer.get_by_label("Prompt", exact=True).fill(PROMPT)
    designer.get_by_label("Base model").select_option("tiny-sd15")
    designer.get_by_label("Steps").fill("2")
    designer.get_by_label("Images per run").fill("2")
    designer.get_by_label("Price per image").fill("9.90")
    designer.get_by_role("button", name="Create the template").click()
    expect(designer.get_by_role("heading", level=1)).to_have_text("Window light headshot")
    with tenant_context(a.studio):
        template = Template.objects.select_related("current_version").get(name="Window light headshot")
        version = template.current_version
    assert template.status == Template.Status.DRAFT and version.number == 1 and version.steps == 2

    # Live preview on the sample double: a job with a progress bar, then the portraits beside the previous version.
    panel = designer.locator(f"#template-preview-{version.pk}")
    expect(panel.get_by_label("Sample double")).to_contain_text("Sample Sam")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.locator(".progress, progress, [role=progressbar]").first).to_be_attached()
    assert _run_queued_jobs(a) == 1
    preview_side = designer.locator(f"#preview-current-{version.pk}")
    expect(preview_side.locator("img")).to_have_count(2, timeout=15_000)
    with tenant_context(a.studio):
        preview = RenderRun.objects.get(kind=RenderRun.Kind.PREVIEW)
        assert preview.double_id == sample.pk
        assert Portrait.objects.filter(run=preview, template_version=version).count() == 2

    designer.get_by_role("button", name="Publish").click()
    with tenant_context(a.studio):
        expect(designer.locator("body")).to_contain_text("Published")
        assert Template.objects.get(pk=template.pk).status == Template.Status.PUBLISHED

    # --- Staff run the published template for Ada's digital double.
    desk = browser.new_context().new_page()
    _sign_in(desk, studio_url, staff.email)
    desk.goto(f"{studio_url}runs/new/{double.pk}/")
    expect(desk.get_by_role("heading", level=1)).to_have_text("Run templates for Ada Client")
    desk.get_by_role("checkbox", name="Window light headshot").check()
    desk.get_by_label("Images of Window light headshot").fill("3")
    desk.get_by_role("button", name="Review the estimate").click()
    expect(desk.locator("#run-estimate")).to_contain_text("3")
    desk.get_by_role("button", name="Start the run").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Run #")
    with tenant_context(a.studio):
        run = RenderRun.objects.get(kind=RenderRun.Kind.CLIENT, double=double)
        item = run.items.get()
    card = desk.locator(f"#item-{item.pk}")
    expect(card).to_contain_text("Window light headshot")
    expect(card.locator(".progress, progress, [role=progressbar]").first).to_be_attached()

    assert _run_queued_jobs(a) == 1
    portraits = card.locator("li.portrait")
    expect(portraits).to_have_count(3, timeout=15_000)  # the card polls until its job ends
    expect(card.locator(".portrait-rank")).to_have_count(3)
    # The demo model renders noise: no face, so no likeness number, flagged and ranked after any real face.
    expect(card.locator(".portrait-likeness").first).to_contain_text("Likeness")
    expect(card.locator(".portrait-flag").first).to_have_text("No face found")
    expect(card.locator(".portrait-pick")).to_have_count(2)  # the best K (2) per template
    ranks = sorted(int(portraits.nth(i).get_attribute("data-rank") or 0) for i in range(3))
    assert ranks == [1, 2, 3]
    expect(card).to_contain_text("Demo model — images are noise")

    # --- "More like me" on the first portrait: one step more likeness, same seed, as a new portrait.
    first = portraits.first
    first_id = int((first.get_attribute("id") or "").removeprefix("portrait-"))
    with tenant_context(a.studio):
        original = Portrait.objects.get(pk=first_id)
    first.get_by_role("button", name="More like me").click()
    expect(card.locator(".progress, progress, [role=progressbar]").first).to_be_attached()
    assert _run_queued_jobs(a) == 1
    expect(card.locator("li.portrait")).to_have_count(4, timeout=15_000)
    with tenant_context(a.studio):
        child = Portrait.objects.get(parent=original)
    assert child.template_version_id == version.pk and child.run_id == run.pk
    assert child.recipe["seed"] == original.recipe["seed"]
    assert child.identity_weight > original.identity_weight
    assert child.recipe["more_like_me_step"] == original.recipe.get("more_like_me_step", 0) + 1
    new_card = card.locator(f"#portrait-{child.pk}")
    expect(new_card).to_have_attribute("data-identity-weight", str(child.identity_weight))

    # Close the pages before the database is flushed: their progress polling must not race the teardown.
    designer.context.close()
    desk.context.close()
