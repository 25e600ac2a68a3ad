"""Client intake in a real browser: staff add a client, open a photo set and create a self-upload link; the client
opens it on a phone-sized screen, agrees to the consent text and uploads photos from the "camera roll"; the
validation job runs; both the client and the staff then see each photo's verdict, and staff the readiness meter.

The validation job is run right here with jobs.tasks.run_job (the live server runs in this process), so
no worker is needed; the broker call is recorded instead of sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from clients.models import Client, Photo, PhotoSet
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD
from tests.face_fixtures import FACES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture
def private_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.fixture
def broker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args) or "recorded")
    return calls


def test_staff_sends_a_link_the_client_uploads_and_both_see_verdicts(
    live_server, two_tenants, page: Page, browser: Browser, private_storage: Path, broker_calls, tmp_path: Path
):
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"

    # Staff sign in and add a client (no consent yet: the client gives it on the upload page).
    page.goto(studio_url)
    page.get_by_label("Email").fill(a.owner.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clients")
    page.get_by_role("link", name="Add a client").click()
    page.get_by_label("Name").fill("Ada Client")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_role("button", name="Add client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Client")
    expect(page.locator(".consent-status")).to_contain_text("Missing")

    # A photo set, and a self-upload link for it.
    page.get_by_role("button", name="New photo set").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Photo set")
    page.get_by_role("button", name="Create upload link").click()
    expect(page.locator(".messages")).to_contain_text("Upload link created")
    link = page.locator(".link-url").first.input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}{a.prefix}/u/[\w-]+/", link), link

    # A disguised file among the photos: HTML called .jpg.
    fake = tmp_path / "IMG_0042.jpg"
    fake.write_bytes(b"<!doctype html><html><body>not a photo</body></html>")
    photos = [FACES / n for n in ("person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg")]
    files = [*photos, FACES / "two_people.jpg", fake]

    # The client opens the link on a phone, with no session: consent first, then the upload step.
    phone_context = browser.new_context(**PHONE)
    try:
        phone = phone_context.new_page()
        phone.goto(link)
        expect(phone.locator(".plain-brand")).to_contain_text("Studio A")
        expect(phone.get_by_role("heading", level=1)).to_have_text("Hello Ada Client")
        expect(phone.locator(".consent-body")).to_contain_text("digital double")
        phone.get_by_label("I have read and agree to this").check()
        phone.get_by_role("button", name="Agree and continue").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Upload your photos")
        expect(phone.locator(".guidance")).to_contain_text("No sunglasses")

        # Choosing from the camera roll sends at once, one request per file, each with its own progress bar.
        phone.locator("input[type=file]").set_input_files([str(f) for f in files])
        items = phone.locator(".upload-list .upload-item")
        expect(items).to_have_count(len(files))
        expect(phone.locator(".upload-list .upload-done")).to_have_count(5, timeout=20_000)
        expect(phone.locator(".upload-list .upload-rejected")).to_have_count(1)
        expect(phone.locator(".upload-list .upload-rejected")).to_contain_text("IMG_0042.jpg")
        expect(phone.locator("[data-remaining]")).to_have_text("54")  # 60 per link, 6 sent
        assert phone.locator(".upload-list progress").count() == len(files)

        with tenant_context(a.studio):
            client = Client.objects.get(name="Ada Client")
            photo_set = PhotoSet.objects.get(client=client)
            assert client.consent_method == Client.ConsentMethod.SELF and client.consent_ip
            assert Photo.objects.filter(photo_set=photo_set, status=Photo.Status.PENDING).count() == 5
            jobs = list(Job.objects.filter(kind="intake.validate_set", state=Job.State.QUEUED))
        assert jobs and broker_calls  # queued on commit

        # The validation job runs (here, in-process, instead of a worker).
        for job in jobs:
            assert run_job(job.pk, a.studio.pk) == "succeeded"
        with tenant_context(a.studio):
            verdicts = {p.original_name: p for p in Photo.objects.filter(photo_set=photo_set)}
        assert verdicts["two_people.jpg"].status == Photo.Status.REJECTED
        accepted = [p for p in verdicts.values() if p.status == Photo.Status.ACCEPTED]
        assert len(accepted) >= 3
        assert not [p for p in verdicts.values() if p.status == Photo.Status.PENDING]

        # The client's page polls while photos are checked: their verdicts and thumbnails appear.
        expect(phone.locator("#self-photos .photo-accepted")).to_have_count(len(accepted), timeout=15_000)
        group = verdicts["two_people.jpg"]
        expect(phone.locator(f"#photo-{group.pk} .photo-reason")).to_have_text(group.reason)
        thumb = phone.locator("#self-photos .photo-accepted img").first
        expect(thumb).to_be_visible()
        # The thumbnail really loads through its signed media link (lazy images: wait for the decode).
        phone.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
        assert phone.locator(".mainnav").count() == 0
    finally:
        phone_context.close()

    # Staff reload the set page: verdicts with reasons beside the thumbnails, and the readiness meter.
    page.reload()
    expect(page.locator("#set-photos .photo")).to_have_count(len(files))
    expect(page.locator("#set-photos .photo-accepted")).to_have_count(len(accepted))
    for photo in verdicts.values():
        card = page.locator(f"#photo-{photo.pk}")
        expect(card.locator(".photo-verdict .badge")).to_have_text(photo.get_status_display())
        if photo.status == Photo.Status.REJECTED:
            expect(card.locator(".photo-reason")).to_have_text(photo.reason)
    expect(page.locator("#set-readiness .readiness-figures")).to_contain_text(f"{len(accepted)} accepted of 10 needed")
    expect(page.locator("#set-readiness .readiness-meter")).to_have_attribute("aria-valuenow", str(len(accepted) * 5))
    expect(page.locator("#set-readiness .readiness-hints")).to_contain_text("Add at least")
    expect(page.locator("#set-validation .job-progress")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".upload-link").first).to_contain_text("6 photos uploaded")


def test_a_failed_upload_keeps_its_reason_and_retries(
    live_server, two_tenants, page: Page, private_storage: Path, broker_calls
):
    """The server fails one file (here a 503 answered in the browser's network layer for its first try): the
    item says why and offers Retry; the retry goes to the real server and the photo arrives. A refusal that a
    second try can't change (not a photo) gets no Retry."""
    a, _ = two_tenants
    with tenant_context(a.studio):
        from clients import services

        client = services.create_client(name="Ada Client", created_by=a.owner)
        services.record_consent(
            client=client,
            consent_text=services.current_consent_text(),
            method="staff",
            ip="203.0.113.5",
            collected_by=a.owner,
        )
        photo_set = services.create_photo_set(client=client, created_by=a.owner)
    page.goto(f"{live_server.url}{a.prefix}/")
    page.get_by_label("Email").fill(a.owner.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}{a.prefix}/clients/{client.pk}/sets/{photo_set.pk}/")

    failed_once: list[str] = []

    def flaky(route: Any) -> None:
        if not failed_once:
            failed_once.append(route.request.url)
            route.fulfill(status=503, body="")
        else:
            route.continue_()

    page.route("**/upload/", flaky)
    page.locator("#id_files").set_input_files([str(FACES / "person_a_01.jpg")])
    page.locator("form[data-uploader] button[type=submit]").click()
    item = page.locator(".upload-list .upload-item").first
    expect(item).to_have_class(re.compile("upload-error"))
    expect(item.locator(".upload-status")).to_have_text("The server could not store this photo (error 503).")
    item.get_by_role("button", name="Retry uploading person_a_01.jpg").click()
    expect(item).to_have_class(re.compile("upload-done|upload-accepted"))
    expect(item.get_by_role("button")).to_have_count(0)
    with tenant_context(a.studio):
        assert Photo.objects.filter(photo_set=photo_set).count() == 1

    # Not a photo: the server's reason, no Retry (it would be refused again).
    fake = private_storage.parent / "notes.jpg"
    fake.write_bytes(b"%PDF-1.7 not a photo")
    page.locator("#id_files").set_input_files([str(fake)])
    page.locator("form[data-uploader] button[type=submit]").click()
    second = page.locator(".upload-list .upload-item").nth(1)
    expect(second).to_have_class(re.compile("upload-rejected|upload-error"))
    expect(second.get_by_role("button")).to_have_count(0)
