"""The intake API (clients/api.py): clients, consent, photo sets, uploads with real files, upload links."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.drainage import GENERATOR_STATS

from clients import services
from clients.models import Client, ConsentText, DeletionReceipt, Photo, PhotoSet, UploadLink
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.clients.conftest import FACES, fixture_bytes, reload
from tests.conftest import Tenant, add_member
from tests.factories import build

pytestmark = pytest.mark.django_db


def api(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/api/{path}"


def set_url(tenant: Tenant, photo_set: PhotoSet, rest: str = "") -> str:
    return api(tenant, f"clients/{photo_set.client_id}/photo-sets/{photo_set.pk}/{rest}")


def files(*items: tuple[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, data, content_type="application/octet-stream") for name, data in items]


def key_headers(tenant: Tenant) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="integration", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


# --- clients --------------------------------------------------------------------------------------------------


def test_create_list_retrieve_update_a_client(client_a: Any, tenant_a: Tenant):
    response = client_a.post(
        api(tenant_a, "clients/"), {"name": " Ada ", "email": "ada@example.com"}, "application/json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["name"], created["email"], created["consent"], created["photo_set_count"]) == (
        "Ada",
        "ada@example.com",
        None,
        0,
    )
    listed = client_a.get(api(tenant_a, "clients/")).json()
    assert [c["id"] for c in listed["results"]] == [created["id"]]
    url = api(tenant_a, f"clients/{created['id']}/")
    assert client_a.get(url).json()["name"] == "Ada"
    response = client_a.patch(url, {"phone": "+33 1 23", "status": "archived"}, "application/json")
    assert response.status_code == 200
    assert (response.json()["phone"], response.json()["status"]) == ("+33 1 23", "archived")
    assert_error(client_a.patch(url, {"name": "  "}, "application/json"), 400)
    assert_error(client_a.post(api(tenant_a, "clients/"), {"name": ""}, "application/json"), 400)
    assert_error(client_a.post(api(tenant_a, "clients/"), {"name": "X", "email": "nope"}, "application/json"), 400)


def test_clients_list_query_count_does_not_grow(client_a: Any, tenant_a: Tenant, django_assert_max_num_queries: Any):
    def add_clients(n: int) -> None:
        with tenant_context(tenant_a.studio):
            text = services.current_consent_text()
            for i in range(n):
                c = services.create_client(name=f"C{i}", created_by=tenant_a.owner)
                services.record_consent(
                    client=c, consent_text=text, method="staff", ip=None, collected_by=tenant_a.owner
                )
                services.create_photo_set(client=c, created_by=None)

    add_clients(3)
    with django_assert_max_num_queries(11) as small:
        assert client_a.get(api(tenant_a, "clients/")).status_code == 200
    add_clients(12)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client_a.get(api(tenant_a, "clients/"))
    assert len(response.json()["results"]) == 15 and "count" not in response.json()  # a cursor page, no count
    assert all(c["consent"]["method"] == "staff" and c["photo_set_count"] == 1 for c in response.json()["results"])


def test_photographers_read_but_dont_write_api_keys_do(client: Any, tenant_a: Tenant):
    client.force_login(add_member(tenant_a, "photo@a.example", Role.PHOTOGRAPHER))
    assert client.get(api(tenant_a, "clients/")).status_code == 200
    assert_error(client.post(api(tenant_a, "clients/"), {"name": "X"}, "application/json"), 403)
    client.logout()
    headers = key_headers(tenant_a)
    response = client.post(api(tenant_a, "clients/"), {"name": "From CRM"}, "application/json", headers=headers)
    assert response.status_code == 201
    assert client.post(api(tenant_a, "clients/"), {"name": "X"}, "application/json").status_code == 401


def test_consent_is_recorded_with_the_current_text(client_a: Any, tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        person = services.create_client(name="Bo", created_by=None)
        v1 = services.current_consent_text()
        v2 = services.publish_consent_text(body="Version two.", created_by=None)
    url = api(tenant_a, f"clients/{person.pk}/consent/")
    assert_error(client_a.post(url, {"consent_text_id": v1.pk}, "application/json"), 409)
    assert_error(client_a.post(url, {"consent_text_id": 999999}, "application/json"), 400)
    response = client_a.post(url, {}, "application/json", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200, response.content
    consent = response.json()["consent"]
    assert (consent["text_version"], consent["method"], consent["ip"], consent["collected_by"]) == (
        v2.version,
        "staff",
        "198.51.100.7",
        tenant_a.owner.email,
    )


def test_erase_is_for_managers_and_leaves_a_receipt(client: Any, tenant_a: Tenant, consented_client: Client):
    url = api(tenant_a, f"clients/{consented_client.pk}/erase/")
    client.force_login(add_member(tenant_a, "staff@a.example", Role.STAFF))
    assert_error(client.post(url), 403)
    client.logout()
    assert_error(client.post(url, headers=key_headers(tenant_a)), 403)
    client.force_login(add_member(tenant_a, "manager@a.example", Role.MANAGER))
    response = client.post(url)
    assert response.status_code == 200, response.content
    receipt = response.json()
    assert (receipt["kind"], receipt["client_ref"], receipt["counts"]["clients"]) == (
        "client_erasure",
        consented_client.pk,
        1,
    )
    assert "Ada" not in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert not Client.objects.filter(pk=consented_client.pk).exists()
        assert DeletionReceipt.objects.filter(pk=receipt["id"]).exists()
    assert_error(client.post(url), 404)


def test_export_is_a_zip(client_a: Any, tenant_a: Tenant, consented_client: Client):
    response = client_a.get(api(tenant_a, f"clients/{consented_client.pk}/export/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "client.json" in archive.namelist()
    assert b"Ada Client" in archive.read("client.json")


# --- consent texts --------------------------------------------------------------------------------------------


def test_consent_texts_list_and_publish(client: Any, tenant_a: Tenant):
    client.force_login(tenant_a.owner)
    listed = client.get(api(tenant_a, "consent-texts/")).json()["results"]
    assert [(t["version"], t["is_current"]) for t in listed] == [(1, True)]
    response = client.post(api(tenant_a, "consent-texts/"), {"body": "New terms."}, "application/json")
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["is_current"]) == (2, True)
    assert_error(client.post(api(tenant_a, "consent-texts/"), {"body": ""}, "application/json"), 400)
    client.force_login(add_member(tenant_a, "staff@a.example", Role.STAFF))
    assert_error(client.post(api(tenant_a, "consent-texts/"), {"body": "Mine."}, "application/json"), 403)
    with tenant_context(tenant_a.studio):
        assert ConsentText.objects.count() == 2


# --- photo sets and uploads -----------------------------------------------------------------------------------


def test_create_a_set_and_see_its_readiness(client_a: Any, tenant_a: Tenant, consented_client: Client):
    response = client_a.post(api(tenant_a, f"clients/{consented_client.pk}/photo-sets/"))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["readiness"]["level"] == "not_enough"
    assert created["readiness"]["minimum"] == 10
    listed = client_a.get(api(tenant_a, f"clients/{consented_client.pk}/photo-sets/")).json()["results"]
    assert [s["id"] for s in listed] == [created["id"]]


def test_a_set_of_another_client_is_404(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet):
    other = build(Client, tenant_a)
    url = api(tenant_a, f"clients/{other.pk}/photo-sets/{photo_set.pk}/")
    assert_error(client_a.get(url), 404)
    assert_error(client_a.post(url + "photos/", {"files": files(("a.jpg", b"x"))}), 404)


def test_upload_real_and_malformed_files(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet, settings: Any):
    good = fixture_bytes("person_a_01.jpg")
    rgba = fixture_bytes("person_a_08_rgba.png")
    sent = files(
        ("person_a_01.jpg", good),
        ("rgba.png", rgba),
        ("truncated.jpg", good[: len(good) // 3]),
        ("drawing.jpg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'),
        ("page.png", b"<!DOCTYPE html><html><body>hi</body></html>"),
        ("empty.jpg", b""),
    )
    response = client_a.post(set_url(tenant_a, photo_set, "photos/"), {"files": sent})
    assert response.status_code == 201, response.content
    result = response.json()
    rows = {p["original_name"]: p for p in result["photos"]}
    assert set(rows) == {"person_a_01.jpg", "rgba.png", "truncated.jpg", "drawing.jpg", "page.png", "empty.jpg"}
    for name in ("person_a_01.jpg", "rgba.png", "truncated.jpg"):
        assert rows[name]["status"] == "pending"
    for name, code in (("drawing.jpg", "unsupported_type"), ("page.png", "unsupported_type"), ("empty.jpg", "empty")):
        assert (rows[name]["status"], rows[name]["reason_code"]) == ("rejected", code)
        assert rows[name]["reason"]
    assert all(p["source"] == "api" for p in result["photos"])

    assert run_job(result["validation_job_id"], tenant_a.studio.pk) == "succeeded"
    listed = {p["original_name"]: p for p in client_a.get(set_url(tenant_a, photo_set, "photos/")).json()["results"]}
    assert listed["person_a_01.jpg"]["status"] == "accepted", listed["person_a_01.jpg"]
    assert listed["truncated.jpg"]["status"] == "rejected"
    assert listed["truncated.jpg"]["reason_code"] in {"truncated", "corrupt"}
    thumbnail = listed["person_a_01.jpg"]["thumbnail"]
    assert thumbnail.startswith("http://testserver/s/studio-a/media/")
    image = client_a.get(thumbnail)
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert listed["drawing.jpg"]["thumbnail"] is None

    detail = client_a.get(set_url(tenant_a, photo_set)).json()
    readiness = detail["readiness"]
    accepted = sum(p["status"] == "accepted" for p in listed.values())
    assert (readiness["accepted"], readiness["pending"]) == (accepted, 0)
    assert readiness["rejected"] == len(listed) - accepted
    assert readiness["hints"]
    one = client_a.get(set_url(tenant_a, photo_set, f"photos/{listed['person_a_01.jpg']['id']}/"))
    assert one.json()["status"] == "accepted"


def test_files_over_the_limit_become_rejected_rows(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet, settings: Any):
    small = fixture_bytes("person_a_07_small.jpg")
    settings.INTAKE_MAX_UPLOAD_BYTES = len(small) + 10
    big = small + b"\x00" * (len(small) + 100)
    response = client_a.post(
        set_url(tenant_a, photo_set, "photos/"), {"files": files(("big.jpg", big), ("s.jpg", small))}
    )
    assert response.status_code == 201, response.content
    rows = {p["original_name"]: p for p in response.json()["photos"]}
    assert (rows["big.jpg"]["status"], rows["big.jpg"]["reason_code"]) == ("rejected", "too_large")
    assert rows["s.jpg"]["status"] == "pending"
    with tenant_context(tenant_a.studio):
        assert not Photo.objects.get(pk=rows["big.jpg"]["id"]).original


def test_uploads_are_refused_without_consent(client_a: Any, tenant_a: Tenant, private_storage: Any):
    with tenant_context(tenant_a.studio):
        person = services.create_client(name="No consent", created_by=None)
        photo_set = services.create_photo_set(client=person, created_by=None)
    response = client_a.post(
        set_url(tenant_a, photo_set, "photos/"), {"files": files(("a.jpg", fixture_bytes("person_a_01.jpg")))}
    )
    error = assert_error(response, 409)
    assert "consent" in error["message"]
    with tenant_context(tenant_a.studio):
        assert not Photo.objects.filter(photo_set=photo_set).exists()
        assert reload(tenant_a, photo_set).validation_job_id is None
    assert not any(p.is_file() for p in private_storage.rglob("*")) if private_storage.exists() else True


def test_an_upload_without_files_is_400(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet):
    error = assert_error(client_a.post(set_url(tenant_a, photo_set, "photos/"), {"other": "x"}), 400)
    assert "files" in error["message"]


def test_api_keys_upload_and_their_thumbnail_links_need_the_key(client: Any, tenant_a: Tenant, photo_set: PhotoSet):
    headers = key_headers(tenant_a)
    response = client.post(
        set_url(tenant_a, photo_set, "photos/"),
        {"files": files(("a.jpg", fixture_bytes("person_a_02.jpg")))},
        headers=headers,
    )
    assert response.status_code == 201, response.content
    assert run_job(response.json()["validation_job_id"], tenant_a.studio.pk) == "succeeded"
    photo = client.get(set_url(tenant_a, photo_set, "photos/"), headers=headers).json()["results"][0]
    assert photo["thumbnail"]
    assert client.get(photo["thumbnail"], headers=headers).status_code == 200
    assert client.get(photo["thumbnail"]).status_code == 404


def test_photos_list_query_count_does_not_grow(
    client_a: Any, tenant_a: Tenant, photo_set: PhotoSet, add: Any, django_assert_max_num_queries: Any
):
    from django.core.files.base import ContentFile

    def add_photos(n: int) -> None:
        for _ in range(n):
            photo = add(fixture_bytes("person_a_07_small.jpg"))
            with tenant_context(tenant_a.studio):
                photo.thumbnail.save("t.jpg", ContentFile(b"\xff\xd8\xff" + b"0" * 10), save=True)

    add_photos(2)
    with django_assert_max_num_queries(13) as small:
        assert client_a.get(set_url(tenant_a, photo_set, "photos/")).status_code == 200
    add_photos(8)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client_a.get(set_url(tenant_a, photo_set, "photos/"))
    assert response.json()["count"] == 10
    assert all(p["thumbnail"] for p in response.json()["results"])


# --- upload links ---------------------------------------------------------------------------------------------


def test_upload_links_create_and_revoke(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet):
    response = client_a.post(set_url(tenant_a, photo_set, "upload-links/"), {"days": 3}, "application/json")
    assert response.status_code == 201, response.content
    link = response.json()
    assert link["is_usable"] and "/s/studio-a/u/" in link["url"]
    assert "token" not in link
    assert client_a.get(link["url"]).status_code == 200  # the self-upload page opens
    assert_error(client_a.post(set_url(tenant_a, photo_set, "upload-links/"), {"days": 0}, "application/json"), 400)
    url = set_url(tenant_a, photo_set, f"upload-links/{link['id']}/")
    assert client_a.delete(url).status_code == 204
    assert client_a.get(url).json()["is_usable"] is False
    with tenant_context(tenant_a.studio):
        assert UploadLink.objects.get(pk=link["id"]).revoked_at is not None
    assert client_a.get(link["url"]).status_code == 410


def test_an_integration_emails_the_upload_link_to_the_client(
    client: Any, tenant_a: Tenant, photo_set: PhotoSet, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    """What the set's page does, with an API key: the email goes once the request is done, in the studio's client
    language, to the client's address unless another is given; a revoked link can't be sent."""
    from tests.tenants.factories import make_api_key

    with tenant_context(tenant_a.studio):
        key = make_api_key(tenant_a)
        Client.objects.filter(pk=photo_set.client_id).update(email="bea@example.com")
    tenant_a.studio.client_language = "fr"
    tenant_a.studio.save(update_fields=["client_language"])
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    made = client.post(set_url(tenant_a, photo_set, "upload-links/"), {}, "application/json", headers=headers).json()
    send = set_url(tenant_a, photo_set, f"upload-links/{made['id']}/send/")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send, {}, "application/json", headers=headers)
    assert response.status_code == 202 and response.json() == {"sent_to": "bea@example.com"}
    [mail] = mailoutbox
    assert mail.to == ["bea@example.com"] and made["url"] in mail.body
    assert mail.subject == "Studio A\u00a0: envoyez vos photos"
    with django_capture_on_commit_callbacks(execute=True):
        other = client.post(send, {"email": "mum@example.com"}, "application/json", headers=headers)
    assert other.json() == {"sent_to": "mum@example.com"} and mailoutbox[-1].to == ["mum@example.com"]
    assert_error(client.post(send, {"email": "not-an-address"}, "application/json", headers=headers), 400)

    with tenant_context(tenant_a.studio):
        Client.objects.filter(pk=photo_set.client_id).update(email="")
    refused = client.post(send, {}, "application/json", headers=headers)
    assert_error(refused, 400)
    assert "This client has no email address" in refused.json()["error"]["message"]
    client.delete(set_url(tenant_a, photo_set, f"upload-links/{made['id']}/"), headers=headers)
    revoked = client.post(send, {"email": "bea@example.com"}, "application/json", headers=headers)
    assert_error(revoked, 409)
    assert revoked.json()["error"]["message"] == "This link is revoked or expired: create a new one to send."
    assert len(mailoutbox) == 2


# --- schema ---------------------------------------------------------------------------------------------------


def test_the_intake_api_is_in_the_schema_without_warnings(client: Any):
    GENERATOR_STATS.reset()
    schema = client.get("/api/schema/?format=json").json()
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert problems == []
    upload = schema["paths"]["/api/clients/{client_id}/photo-sets/{photoset_id}/photos/"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "/api/clients/{client_id}/erase/" in schema["paths"]
    assert FACES.is_dir()


# --- the back office (clients/admin.py) -----------------------------------------------------------------------


def test_admin_pages_of_the_intake_models_open(client_a: Any, tenant_a: Tenant):
    objects = {
        model: build(model, tenant_a) for model in (Client, ConsentText, PhotoSet, Photo, UploadLink, DeletionReceipt)
    }
    for model, obj in objects.items():
        base = f"{tenant_a.prefix}/admin/clients/{model._meta.model_name}/"
        assert client_a.get(base).status_code == 200, base
        page = client_a.get(f"{base}{obj.pk}/change/")
        assert page.status_code == 200, base
        if model is UploadLink:
            assert obj.token not in page.content.decode()  # the client's credential is never shown
    for model in (ConsentText, PhotoSet, Photo, UploadLink, DeletionReceipt):
        base = f"{tenant_a.prefix}/admin/clients/{model._meta.model_name}/"
        assert client_a.get(f"{base}add/").status_code == 403, model
    for model in (Client, PhotoSet, Photo, UploadLink, DeletionReceipt):
        obj = objects[model]
        url = f"{tenant_a.prefix}/admin/clients/{model._meta.model_name}/{obj.pk}/delete/"
        assert client_a.post(url, {"post": "yes"}).status_code == 403, model
    with tenant_context(tenant_a.studio):
        assert DeletionReceipt.objects.filter(pk=objects[DeletionReceipt].pk).exists()


def test_admin_erases_clients_through_the_service(client_a: Any, tenant_a: Tenant, consented_client: Client):
    url = f"{tenant_a.prefix}/admin/clients/client/"
    response = client_a.post(url, {"action": "erase", "_selected_action": [consented_client.pk]})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert not Client.objects.filter(pk=consented_client.pk).exists()
        receipt = DeletionReceipt.objects.get(client_ref=consented_client.pk)
    assert receipt.kind == "client_erasure"
    assert receipt.performed_by == tenant_a.owner


def test_the_intake_back_office_is_for_owners_and_managers(client: Any, tenant_a: Tenant):
    client.force_login(add_member(tenant_a, "staff@a.example", Role.STAFF))
    assert client.get(f"{tenant_a.prefix}/admin/clients/client/").status_code == 403
    client.force_login(add_member(tenant_a, "manager@a.example", Role.MANAGER))
    assert client.get(f"{tenant_a.prefix}/admin/clients/client/").status_code == 200
