"""The studio's client pages: list, create (with consent collected in person), detail, erase, export, the consent
text editor, the photo set page with its upload endpoint, validation progress and self-upload links.

Another studio's ids are covered by tests/test_isolation.py; these tests check the pages' own behaviour."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients import services
from clients.models import Client, ConsentText, DeletionReceipt, Photo, PhotoSet, UploadLink
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.clients.conftest import fixture_bytes, upload
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}


def set_url(tenant, photo_set, suffix: str = "") -> str:
    return f"{tenant.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/{suffix}"


def make_clients(tenant, n: int, *, start: int = 0) -> None:
    with tenant_context(tenant.studio):
        for i in range(start, start + n):
            services.create_client(name=f"Client {i:03d}", email=f"c{i}@example.com", created_by=tenant.owner)


def count_queries(client: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


# --- the clients list -----------------------------------------------------------------------------------------


def test_clients_list_shows_the_studios_clients_and_searches(client_a, two_tenants):
    a, b = two_tenants
    make_clients(a, 3)
    with tenant_context(a.studio):
        services.create_client(name="Grace Hopper", email="grace@navy.example", phone="+1 555 0100", created_by=None)
    with tenant_context(b.studio):
        services.create_client(name="Other Studio Person", created_by=None)

    response = client_a.get(f"{a.prefix}/clients/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Client 000" in body and "Grace Hopper" in body
    assert "Other Studio Person" not in body

    for query in ("grace", "navy.example", "0100"):
        body = client_a.get(f"{a.prefix}/clients/", {"q": query}).content.decode()
        assert "Grace Hopper" in body and "Client 000" not in body, query
    body = client_a.get(f"{a.prefix}/clients/", {"q": "nobody"}).content.decode()
    assert "No client matches" in body


def test_clients_list_query_count_does_not_grow_with_rows(client_a, tenant_a):
    make_clients(tenant_a, 2)
    few = count_queries(client_a, f"{tenant_a.prefix}/clients/")
    make_clients(tenant_a, 20, start=2)
    with tenant_context(tenant_a.studio):
        for c in Client.objects.all():
            services.create_photo_set(client=c, created_by=None)
    many = count_queries(client_a, f"{tenant_a.prefix}/clients/")
    assert many == few


def test_navigation_links_to_clients(client_a, tenant_a):
    body = client_a.get(f"{tenant_a.prefix}/").content.decode()
    assert f'href="{tenant_a.prefix}/clients/"' in body


# --- creating a client ----------------------------------------------------------------------------------------


def test_create_client_with_consent_collected_in_person(client_a, tenant_a):
    response = client_a.post(
        f"{tenant_a.prefix}/clients/new/",
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "123",
            "notes": "Prefers mornings",
            "consent_in_person": "on",
        },
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        client = Client.objects.get(name="Ada Lovelace")
        current = ConsentText.objects.order_by("-version").first()
    assert response["Location"] == f"{tenant_a.prefix}/clients/{client.pk}/"
    assert client.has_consent
    assert client.consent_text_id == current.pk
    assert client.consent_method == Client.ConsentMethod.STAFF
    assert client.consent_ip == "198.51.100.7"
    assert client.consent_collected_by_id == tenant_a.owner.pk

    body = client_a.get(response["Location"]).content.decode()
    assert f"Version {current.version}" in body and "198.51.100.7" in body and "Collected by staff" in body


def test_create_client_without_consent_and_with_bad_input(client_a, tenant_a):
    response = client_a.post(f"{tenant_a.prefix}/clients/new/", {"name": "No Consent"})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert not Client.objects.get(name="No Consent").has_consent

    response = client_a.post(f"{tenant_a.prefix}/clients/new/", {"name": "", "email": "not-an-email"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter the client&#x27;s name." in body and "Enter a valid email address." in body


def test_photographer_can_look_but_not_change(client, tenant_a, photo_set):
    user = add_member(tenant_a, "photo@example.com", Role.PHOTOGRAPHER)
    client.force_login(user)
    assert client.get(f"{tenant_a.prefix}/clients/").status_code == 200
    assert client.get(f"{tenant_a.prefix}/clients/{photo_set.client_id}/").status_code == 200
    page = client.get(set_url(tenant_a, photo_set))
    assert page.status_code == 200
    assert b"data-uploader" not in page.content and b"Create upload link" not in page.content
    assert client.get(f"{tenant_a.prefix}/clients/new/").status_code == 404
    response = client.post(set_url(tenant_a, photo_set, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))})
    assert response.status_code == 404
    assert client.post(f"{tenant_a.prefix}/clients/{photo_set.client_id}/delete/", {"confirm": "x"}).status_code == 404
    assert client.get(f"{tenant_a.prefix}/clients/{photo_set.client_id}/export/").status_code == 404


def test_staff_can_manage_clients(client, tenant_a):
    user = add_member(tenant_a, "staff@example.com", Role.STAFF)
    client.force_login(user)
    assert client.post(f"{tenant_a.prefix}/clients/new/", {"name": "By Staff"}).status_code == 302


# --- erase and export -----------------------------------------------------------------------------------------


def test_erase_needs_the_typed_name_then_deletes_and_leaves_a_receipt(client_a, tenant_a, photo_set):
    url = f"{tenant_a.prefix}/clients/{photo_set.client_id}/delete/"
    assert client_a.get(url).status_code == 405
    response = client_a.post(url, {"confirm": "ada client"})
    assert response.status_code == 400
    assert "Type the client&#x27;s name exactly" in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert Client.objects.filter(pk=photo_set.client_id).exists()

    response = client_a.post(url, {"confirm": "Ada Client"})
    assert response.status_code == 302 and response["Location"] == f"{tenant_a.prefix}/clients/"
    with tenant_context(tenant_a.studio):
        assert not Client.objects.filter(pk=photo_set.client_id).exists()
        receipt = DeletionReceipt.objects.get(kind=DeletionReceipt.Kind.CLIENT_ERASURE)
    assert receipt.client_ref == photo_set.client_id
    assert f"receipt #{receipt.pk}" in client_a.get(response["Location"]).content.decode()


def test_export_is_a_zip_download(client_a, tenant_a, photo_set):
    response = client_a.get(f"{tenant_a.prefix}/clients/{photo_set.client_id}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist()
    assert client_a.post(f"{tenant_a.prefix}/clients/{photo_set.client_id}/export/").status_code == 405


# --- the consent text -----------------------------------------------------------------------------------------


def test_consent_text_editor_publishes_versions(client_a, tenant_a):
    url = f"{tenant_a.prefix}/clients/consent-text/"
    body = client_a.get(url).content.decode()
    assert "Current version: 1" in body

    response = client_a.post(url, {"body": "New wording of the consent."})
    assert response.status_code == 302
    body = client_a.get(url).content.decode()
    assert "Current version: 2" in body and "Version 1" in body and "New wording of the consent." in body

    assert client_a.post(url, {"body": "New wording of the consent."}).status_code == 400  # unchanged
    assert client_a.post(url, {"body": ""}).status_code == 400
    with tenant_context(tenant_a.studio):
        assert ConsentText.objects.count() == 2


def test_consent_text_staff_reads_only(client, tenant_a):
    user = add_member(tenant_a, "staff@example.com", Role.STAFF)
    client.force_login(user)
    url = f"{tenant_a.prefix}/clients/consent-text/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"body": "Sneaky"}).status_code == 404


# --- photo sets -----------------------------------------------------------------------------------------------


def test_create_photo_set(client_a, tenant_a, consented_client):
    url = f"{tenant_a.prefix}/clients/{consented_client.pk}/sets/new/"
    assert client_a.get(url).status_code == 405
    response = client_a.post(url)
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        photo_set = PhotoSet.objects.get(client=consented_client)
    assert response["Location"] == set_url(tenant_a, photo_set)


def test_photo_set_of_another_client_is_404(client_a, tenant_a, photo_set):
    with tenant_context(tenant_a.studio):
        other = services.create_client(name="Someone Else", created_by=None)
    assert client_a.get(f"{tenant_a.prefix}/clients/{other.pk}/sets/{photo_set.pk}/").status_code == 404


def _photos(tenant, photo_set, n: int, status: str = Photo.Status.REJECTED) -> None:
    with tenant_context(tenant.studio):
        for i in range(n):
            Photo.objects.create(photo_set=photo_set, original_name=f"p{i}.jpg", status=status, reason="Too dark")


def test_photo_set_page_query_count_does_not_grow_with_photos(client_a, tenant_a, photo_set):
    with tenant_context(tenant_a.studio):
        services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)
    _photos(tenant_a, photo_set, 2)
    few = count_queries(client_a, set_url(tenant_a, photo_set))
    _photos(tenant_a, photo_set, 15)
    with tenant_context(tenant_a.studio):
        services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)
    many = count_queries(client_a, set_url(tenant_a, photo_set))
    assert many == few


def test_upload_endpoint_stores_pending_photos_and_queues_validation(client_a, tenant_a, photo_set):
    response = client_a.post(
        set_url(tenant_a, photo_set, "upload/"),
        {
            "files": [
                upload(fixture_bytes("person_a_01.jpg"), "one.jpg"),
                upload(fixture_bytes("person_a_02.jpg"), "two.jpg"),
            ]
        },
        headers=JSON,
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert [f["name"] for f in data["files"]] == ["one.jpg", "two.jpg"]
    assert {f["status"] for f in data["files"]} == {"pending"}
    with tenant_context(tenant_a.studio):
        photos = list(Photo.objects.filter(photo_set=photo_set))
        job = Job.objects.get(pk=data["job"])
        assert PhotoSet.objects.get(pk=photo_set.pk).validation_job_id == job.pk
    assert len(photos) == 2 and all(p.status == Photo.Status.PENDING and p.original for p in photos)
    assert all(p.source == Photo.Source.STUDIO for p in photos)
    assert job.kind == "intake.validate_set" and job.state == Job.State.QUEUED


def test_upload_endpoint_without_javascript_redirects_to_the_set(client_a, tenant_a, photo_set):
    response = client_a.post(
        set_url(tenant_a, photo_set, "upload/"), {"files": upload(fixture_bytes("person_a_03.jpg"))}
    )
    assert response.status_code == 302 and response["Location"] == set_url(tenant_a, photo_set)
    assert "1 photo uploaded" in client_a.get(response["Location"]).content.decode()


def test_upload_refused_without_consent_stores_nothing(client_a, tenant_a):
    with tenant_context(tenant_a.studio):
        client = services.create_client(name="Not Yet", created_by=None)
        photo_set = services.create_photo_set(client=client, created_by=None)
    response = client_a.post(
        set_url(tenant_a, photo_set, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}, headers=JSON
    )
    assert response.status_code == 409
    assert "consent" in response.json()["error"]["message"]
    response = client_a.post(
        set_url(tenant_a, photo_set, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}
    )
    assert response.status_code == 409 and b"consent" in response.content
    with tenant_context(tenant_a.studio):
        assert not Photo.objects.exists()
        assert not Job.objects.exists()


def test_upload_with_no_file_and_wrong_method(client_a, tenant_a, photo_set):
    response = client_a.post(set_url(tenant_a, photo_set, "upload/"), {}, headers=JSON)
    assert response.status_code == 400 and "Choose at least one photo" in response.json()["error"]["message"]
    assert client_a.get(set_url(tenant_a, photo_set, "upload/")).status_code == 405


def test_upload_too_big_is_recorded_as_rejected(client_a, tenant_a, photo_set, settings):
    settings.INTAKE_MAX_UPLOAD_BYTES = 50_000
    big = fixture_bytes("person_a_01.jpg")
    assert len(big) > 50_000
    response = client_a.post(set_url(tenant_a, photo_set, "upload/"), {"files": upload(big, "big.jpg")}, headers=JSON)
    assert response.status_code == 201
    [entry] = response.json()["files"]
    assert entry["status"] == "rejected" and entry["reason"]
    with tenant_context(tenant_a.studio):
        photo = Photo.objects.get(photo_set=photo_set)
    assert photo.status == Photo.Status.REJECTED and not photo.original


def test_upload_endpoint_checks_csrf(tenant_a, photo_set):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(tenant_a.owner)
    response = browser.post(
        set_url(tenant_a, photo_set, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}
    )
    assert response.status_code == 403
    page = browser.get(set_url(tenant_a, photo_set))
    token = page.context["csrf_token"]
    response = browser.post(
        set_url(tenant_a, photo_set, "upload/"),
        {"files": upload(fixture_bytes("person_a_01.jpg"))},
        headers={**JSON, "X-CSRFToken": str(token)},
    )
    assert response.status_code == 201


def test_validation_progress_then_grid_with_verdicts_and_readiness(client_a, tenant_a, photo_set):
    response = client_a.post(
        set_url(tenant_a, photo_set, "upload/"),
        {
            "files": [
                upload(fixture_bytes("person_a_01.jpg"), "good.jpg"),
                upload(fixture_bytes("two_people.jpg"), "two.jpg"),
            ]
        },
        headers=JSON,
    )
    job_id = response.json()["job"]
    status = client_a.get(set_url(tenant_a, photo_set, "status/"), {"grid": "2-0"}).content.decode()
    assert 'hx-trigger="every 1s"' in status and 'id="set-photos"' not in status  # still polling, no new verdict

    assert run_job(job_id, tenant_a.studio.pk) == "succeeded"
    status = client_a.get(set_url(tenant_a, photo_set, "status/")).content.decode()
    assert 'hx-trigger="every 1s"' not in status  # finished: polling stops
    assert 'id="set-photos" hx-swap-oob="true"' in status and 'id="set-readiness" hx-swap-oob="true"' in status

    page = client_a.get(set_url(tenant_a, photo_set)).content.decode()
    with tenant_context(tenant_a.studio):
        good = Photo.objects.get(photo_set=photo_set, original_name="good.jpg")
        two = Photo.objects.get(photo_set=photo_set, original_name="two.jpg")
    assert good.status == Photo.Status.ACCEPTED and two.status == Photo.Status.REJECTED
    assert two.reason and two.reason in page.replace("&#x27;", "'")
    assert "/media/" in page  # the thumbnail, through a signed media link
    assert "<strong>1</strong> accepted of <strong>10</strong> needed" in page


# --- self-upload links (staff side) ---------------------------------------------------------------------------


def test_create_copy_send_and_revoke_an_upload_link(client_a, tenant_a, photo_set, django_capture_on_commit_callbacks):
    response = client_a.post(set_url(tenant_a, photo_set, "links/new/"))
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        link = UploadLink.objects.get(photo_set=photo_set)
    page = client_a.get(set_url(tenant_a, photo_set)).content.decode()
    assert f"http://testserver{tenant_a.prefix}/u/{link.token}/" in page and "Copy link" in page

    send_url = set_url(tenant_a, photo_set, f"links/{link.pk}/send/")
    assert client_a.post(send_url, {"email": "nope"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(send_url, {"email": "ada@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.com"]
    assert f"http://testserver{tenant_a.prefix}/u/{link.token}/" in mail.outbox[0].body
    assert "Studio A" in mail.outbox[0].subject

    revoke_url = set_url(tenant_a, photo_set, f"links/{link.pk}/revoke/")
    assert client_a.get(revoke_url).status_code == 405
    assert client_a.post(revoke_url).status_code == 302
    with tenant_context(tenant_a.studio):
        link.refresh_from_db()
    assert link.revoked_at is not None
    response = client_a.post(send_url, {"email": "ada@example.com"})
    assert response.status_code == 400 and b"revoked or expired" in response.content
    assert len(mail.outbox) == 1


def test_expired_link_is_listed_as_expired(client_a, tenant_a, photo_set):
    with tenant_context(tenant_a.studio):
        link = services.create_upload_link(photo_set=photo_set, created_by=None)
        UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    page = client_a.get(set_url(tenant_a, photo_set)).content.decode()
    assert f"Link #{link.pk}: expired" in page and link.token not in page


def test_the_status_poll_brings_the_grid_when_a_verdict_arrived(client_a, tenant_a, photo_set, add):
    """While validation runs, the set page's poll sends its grid version; the answer carries the grid and the
    readiness meter (out of band) only when a photo was added or got its verdict since."""
    first, second = add(fixture_bytes("person_a_01.jpg"), "a.jpg"), add(fixture_bytes("person_a_02.jpg"), "b.jpg")
    with tenant_context(tenant_a.studio):
        job = Job.objects.create(kind="intake.validate_set", state=Job.State.RUNNING, payload={})
        PhotoSet.objects.filter(pk=photo_set.pk).update(validation_job=job)
    url = set_url(tenant_a, photo_set, "status/")
    html = client_a.get(url).content.decode()  # the page's first poll: no version yet
    assert 'id="set-photos"' in html and 'hx-vals=\'{"grid": "2-0"}\'' in html
    unchanged = client_a.get(url, {"grid": "2-0"}).content.decode()
    assert 'id="set-photos"' not in unchanged and 'id="set-readiness"' not in unchanged
    with tenant_context(tenant_a.studio):
        Photo.objects.filter(pk=first.pk).update(status=Photo.Status.ACCEPTED)
    changed = client_a.get(url, {"grid": "2-0"}).content.decode()
    assert 'id="set-photos"' in changed and 'id="set-readiness"' in changed and '"grid": "2-1"' in changed
    assert f'id="photo-{second.pk}"' in changed
