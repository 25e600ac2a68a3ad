"""Group portraits in a real browser (issue 17), on the tiny demo model (real diffusers and peft on the CPU): staff
create a group of two clients who have ready digital doubles, run a two-person template for it from the group's
page, make the group's gallery from the run's picks, and the client opens the group's gallery on a phone and asks
"more like me" on one of its portraits.

The gpu job is run right here with jobs.tasks.run_job (the live server runs in this process), the broker call
recorded instead of sent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import Browser, expect

from clients import services as client_services
from clients.models import Client, ClientGroup
from galleries.models import Gallery
from generation import crypto
from generation.models import Portrait, PortraitSubject, RenderRun
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import TEST_PASSWORD, Tenant, add_member
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture
def broker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args) or "recorded")
    return calls


def _person(tenant: Tenant, tiny_engine: dict[str, Any], name: str, lora: bytes) -> Any:
    double = ready_double(tenant, tiny_engine, name=name)
    with tenant_context(tenant.studio):
        client_services.record_consent(
            client=double.client,
            consent_text=client_services.current_consent_text(),
            method=Client.ConsentMethod.STAFF,
            ip="127.0.0.1",
            collected_by=tenant.owner,
        )
        double.lora_file.save("double.bin", ContentFile(crypto.encrypt(lora)), save=False)
        double.save(update_fields=["lora_file"])
    return double


def _run_queued_jobs(tenant: Tenant, timeout: float = 10.0) -> int:
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


def test_staff_make_a_group_run_it_and_the_client_opens_the_groups_gallery_on_a_phone(
    live_server, two_tenants, browser: Browser, run_settings: Path, tiny_engine: dict[str, Any], broker_calls
):
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"
    staff = add_member(a, "desk@studio-a.example", Role.STAFF)
    anna = _person(a, tiny_engine, "Anna Martin", tiny_engine["identity"])
    marc = _person(a, tiny_engine, "Marc Martin", tiny_engine["style"])
    make_template(
        a,
        "Couple, studio light",
        prompt="studio portrait of {subject_1} and {subject_2}, soft light",
        subject_slots=2,
        slot_boxes=[[0.0, 0.1, 0.5, 0.9], [0.5, 0.1, 1.0, 0.9]],
        long_side=0,
    )

    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.goto(studio_url)
    desk.get_by_label("Email").fill(staff.email)
    desk.get_by_label("Password").fill(TEST_PASSWORD)
    desk.get_by_role("button", name="Sign in").click()
    expect(desk.get_by_role("navigation", name="Main")).to_be_visible()

    # --- Clients → Groups → New group: Anna and Marc, in that order.
    desk.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    desk.get_by_role("link", name="Groups").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Groups")
    desk.get_by_role("link", name="New group").first.click()
    desk.get_by_label("Group name").fill("The Martins")
    desk.get_by_label("Person 1").select_option(label="Anna Martin")
    desk.get_by_label("Person 2").select_option(label="Marc Martin")
    desk.get_by_role("button", name="Create group").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("The Martins")
    people = desk.locator(".group-members-table")
    expect(people).to_contain_text("Anna Martin")
    expect(people).to_contain_text("Marc Martin")
    expect(people.locator(".badge", has_text="Ready")).to_have_count(2)

    # --- Run the two-person template for the group.
    desk.get_by_role("link", name="Run group templates").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Run group templates for The Martins")
    desk.get_by_role("checkbox", name="Couple, studio light").check()
    desk.get_by_label("Images of Couple, studio light").fill("2")
    desk.get_by_role("button", name="Review the estimate").click()
    expect(desk.locator("#estimate-images")).to_have_text("2")
    desk.get_by_role("button", name="Start the group run").click()
    expect(desk.locator("#run-status")).to_be_visible()
    expect(desk.locator("body")).to_contain_text("Group of 2")
    assert _run_queued_jobs(a) == 1
    with tenant_context(a.studio):
        group = ClientGroup.objects.get(name="The Martins")
        run = RenderRun.objects.get(group=group)
        portraits = list(Portrait.objects.filter(run=run))
        assert len(portraits) == 2 and all(p.group_id == group.pk for p in portraits)
        for portrait in portraits:
            faces = list(PortraitSubject.objects.filter(portrait=portrait).order_by("slot"))
            assert [f.double_id for f in faces] == [anna.pk, marc.pk]
    desk.reload()
    expect(desk.locator("#run-status")).to_have_text("Done")

    # --- The group's gallery from the run's picks: one link for the family, sent to Anna.
    desk.get_by_role("button", name="Create the group's gallery from the picks").click()
    expect(desk.locator("body")).to_contain_text("one link for all of them")
    with tenant_context(a.studio):
        gallery = Gallery.objects.get(group=group)
        assert gallery.client_id == anna.client_id
    link = f"{live_server.url}{a.prefix}/g/{gallery.token}/"
    desk.goto(f"{studio_url}clients/groups/{group.pk}/")
    expect(desk.locator("#galleries")).to_contain_text("Portraits of The Martins")
    expect(desk.locator(".group-portraits img")).to_have_count(2)

    # --- The client opens the group's gallery on a phone.
    phone_context = browser.new_context(**PHONE)
    try:
        phone = phone_context.new_page()
        phone.goto(link)
        expect(phone.get_by_role("heading", level=1)).to_have_text("Portraits of The Martins")
        expect(phone.locator(".g-eyebrow")).to_contain_text("for The Martins")
        tiles = phone.locator("#gallery-grid .g-tile")
        expect(tiles).to_have_count(2)
        first = tiles.first.locator("img")
        phone.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=first.element_handle())
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390

        # --- "More like me" on a group portrait: every face again, each a step closer to its person.
        tiles.first.get_by_role("button", name="More like me").click()
        expect(phone.locator("#gallery-requests")).to_contain_text("A new version is on its way.")
        assert _run_queued_jobs(a) == 1
        expect(tiles).to_have_count(3, timeout=20_000)
        with tenant_context(a.studio):
            child = Portrait.objects.get(parent__isnull=False)
            assert child.group_id == group.pk and child.recipe["more_like_me_step"] == 1
            assert [f.double_id for f in PortraitSubject.objects.filter(portrait=child).order_by("slot")] == [
                anna.pk,
                marc.pk,
            ]
    finally:
        phone_context.close()
