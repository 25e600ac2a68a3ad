"""The client's self-upload page: link states, the consent step (method "self", the client's IP), uploads from
the link with a per-link limit, only the client's own photos, and no CSRF cookie needed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from clients import services
from clients.models import Client, Photo, UploadLink
from jobs.models import Job
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, upload

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}


@pytest.fixture
def new_client_set(tenant_a):
    """A client without consent on record, with a photo set and a usable upload link."""
    with tenant_context(tenant_a.studio):
        client = services.create_client(name="Bea Client", email="bea@example.com", created_by=tenant_a.owner)
        photo_set = services.create_photo_set(client=client, created_by=tenant_a.owner)
        link = services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)
    return client, photo_set, link


def url(tenant, link_or_token, suffix: str = "") -> str:
    token = getattr(link_or_token, "token", link_or_token)
    return f"{tenant.prefix}/u/{token}/{suffix}"


def consent(browser: HttpClient, tenant, link, **extra):
    with tenant_context(tenant.studio):
        current = services.current_consent_text()
    return browser.post(url(tenant, link), {"agree": "on", "consent_text_id": str(current.pk)}, **extra)


def test_unknown_revoked_expired_and_other_studios_links(client, two_tenants, new_client_set):
    a, b = two_tenants
    _, _, link = new_client_set
    response = client.get(url(a, "no-such-token"))
    assert response.status_code == 404 and b"Studio A" in response.content
    assert client.get(url(b, link)).status_code == 404  # studio A's link at studio B: unknown there
    assert client.post(url(b, link, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}).status_code == 404

    with tenant_context(a.studio):
        UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(url(a, link))
    assert response.status_code == 410
    assert client.post(url(a, link, "upload/"), {}, headers=JSON).status_code == 410

    with tenant_context(a.studio):
        UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() + timedelta(days=1))
        services.revoke_upload_link(link=UploadLink.objects.get(pk=link.pk))
    response = client.get(url(a, link))
    assert response.status_code == 410
    assert b"data-uploader" not in response.content


def test_consent_step_then_upload_step(client, tenant_a, new_client_set):
    client_obj, _, link = new_client_set
    page = client.get(url(tenant_a, link))
    assert page.status_code == 200
    body = page.content.decode()
    with tenant_context(tenant_a.studio):
        current = services.current_consent_text()
    assert "Hello Bea Client" in body and "I agree that the studio may use the photos" in body
    assert f"version {current.version}" in body and "data-uploader" not in body
    assert "Studio A" in body  # branded
    assert 'name="viewport"' in body

    missing = client.post(url(tenant_a, link), {"consent_text_id": str(current.pk)})
    assert missing.status_code == 400 and b"Tick the box" in missing.content

    response = consent(client, tenant_a, link, REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 302 and response["Location"] == url(tenant_a, link)
    with tenant_context(tenant_a.studio):
        client_obj = Client.objects.get(pk=client_obj.pk)
    assert client_obj.has_consent
    assert client_obj.consent_method == Client.ConsentMethod.SELF
    assert client_obj.consent_ip == "192.0.2.44"
    assert client_obj.consent_text_id == current.pk and client_obj.consent_collected_by_id is None

    body = client.get(url(tenant_a, link)).content.decode()
    assert 'accept="image/*,.heic,.heif"' in body and "multiple" in body
    assert "No sunglasses" in body and "Only you in the photo" in body
    assert "Revoke" not in body and "Delete everything" not in body and 'class="mainnav"' not in body


def test_consent_to_an_outdated_text_is_asked_again(client, tenant_a, new_client_set):
    client_obj, _, link = new_client_set
    with tenant_context(tenant_a.studio):
        old = services.current_consent_text()
        services.publish_consent_text(body="A newer text.", created_by=tenant_a.owner)
    response = client.post(url(tenant_a, link), {"agree": "on", "consent_text_id": str(old.pk)})
    assert response.status_code == 409
    assert b"A newer text." in response.content and b"read it again" in response.content
    with tenant_context(tenant_a.studio):
        assert not Client.objects.get(pk=client_obj.pk).has_consent


def test_upload_before_consent_is_refused(client, tenant_a, new_client_set):
    _, photo_set, link = new_client_set
    response = client.post(
        url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}, headers=JSON
    )
    assert response.status_code == 409 and "consent" in response.json()["error"]["message"]
    with tenant_context(tenant_a.studio):
        assert not Photo.objects.filter(photo_set=photo_set).exists()


def test_uploads_from_the_link_without_csrf_cookie(tenant_a, new_client_set):
    _, photo_set, link = new_client_set
    phone = HttpClient(enforce_csrf_checks=True)  # no session, no CSRF cookie, as a phone's in-app browser
    assert consent(phone, tenant_a, link).status_code == 302
    files = [
        upload(fixture_bytes("person_a_01.jpg"), "IMG_0001.jpg"),
        upload(fixture_bytes("person_a_02.jpg"), "IMG_0002.jpg"),
    ]
    response = phone.post(url(tenant_a, link, "upload/"), {"files": files}, headers=JSON)
    assert response.status_code == 201, response.content
    assert [f["status"] for f in response.json()["files"]] == ["pending", "pending"]
    with tenant_context(tenant_a.studio):
        photos = list(Photo.objects.filter(photo_set=photo_set))
        link.refresh_from_db()
        job = Job.objects.get(kind="intake.validate_set")
    assert {p.source for p in photos} == {Photo.Source.SELF} and len(photos) == 2
    assert link.uploads == 2 and link.last_used_at is not None
    assert job.payload["photo_set_id"] == photo_set.pk

    # Without JavaScript: a plain form post goes back to the page.
    response = phone.post(url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_03.jpg"), "c.jpg")})
    assert response.status_code == 302 and response["Location"] == url(tenant_a, link)


def test_a_cross_site_post_is_refused(client, tenant_a, new_client_set):
    _, photo_set, link = new_client_set
    evil = {"Origin": "https://evil.example"}
    assert client.post(url(tenant_a, link), {"agree": "on"}, headers=evil).status_code == 403
    response = client.post(
        url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"))}, headers=evil
    )
    assert response.status_code == 403
    same = {"Origin": "http://testserver"}
    assert consent(client, tenant_a, link, headers=same).status_code == 302


def test_per_link_limit(client, tenant_a, new_client_set, settings):
    settings.INTAKE_UPLOAD_LINK_MAX_PHOTOS = 3
    _, photo_set, link = new_client_set
    consent(client, tenant_a, link)
    two = [upload(fixture_bytes("person_a_01.jpg"), "1.jpg"), upload(fixture_bytes("person_a_02.jpg"), "2.jpg")]
    assert client.post(url(tenant_a, link, "upload/"), {"files": two}, headers=JSON).status_code == 201
    two = [upload(fixture_bytes("person_a_03.jpg"), "3.jpg"), upload(fixture_bytes("person_a_04.jpg"), "4.jpg")]
    response = client.post(url(tenant_a, link, "upload/"), {"files": two}, headers=JSON)
    assert response.status_code == 429 and "1 more photo" in response.json()["error"]["message"]
    assert (
        client.post(
            url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_03.jpg"))}, headers=JSON
        ).status_code
        == 201
    )
    response = client.post(
        url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_04.jpg"))}, headers=JSON
    )
    assert response.status_code == 429 and "maximum of 3 photos" in response.json()["error"]["message"]
    with tenant_context(tenant_a.studio):
        assert Photo.objects.filter(photo_set=photo_set).count() == 3
    body = client.get(url(tenant_a, link)).content.decode()
    assert "maximum of 3 photos" in body and "data-uploader" not in body


def test_the_client_sees_only_their_own_photos(client, tenant_a, new_client_set, photo_set):
    """`photo_set` (the conftest's) belongs to another client of the same studio."""
    _, own_set, link = new_client_set
    consent(client, tenant_a, link)
    with tenant_context(tenant_a.studio):
        services.add_photo(
            photo_set=photo_set, upload=upload(fixture_bytes("person_b_01.jpg"), "someone-else.jpg"), source="studio"
        )
    client.post(
        url(tenant_a, link, "upload/"), {"files": upload(fixture_bytes("person_a_01.jpg"), "mine.jpg")}, headers=JSON
    )
    for page in (url(tenant_a, link), url(tenant_a, link, "photos/")):
        body = client.get(page).content.decode()
        assert "mine.jpg" in body and "someone-else.jpg" not in body
    partial = client.get(url(tenant_a, link, "photos/")).content.decode()
    assert 'hx-trigger="every 2s"' in partial  # polls while photos are being checked


def test_a_heic_from_a_phone_camera_roll_is_accepted_upright_and_without_gps(tenant_a, new_client_set):
    """An iPhone-style HEIC (HEVC, EXIF orientation "rotate 90", GPS) sent through the link: stored as HEIF,
    validated by the real job, accepted upright, and its thumbnail carries no metadata."""
    import io

    from PIL import Image

    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this libheif build has no HEVC encoder, so no HEIC can be made here")
    from jobs.tasks import run_job

    pillow_heif.register_heif_opener()
    upright = Image.open(io.BytesIO(fixture_bytes("person_a_01.jpg"))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera held sideways: the stored pixels are rotated, the viewer turns them back
    exif[0x010F] = "Apple"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)})  # GPS
    heic = io.BytesIO()
    upright.rotate(90, expand=True).save(heic, format="HEIF", quality=85, exif=exif.tobytes())

    _, photo_set, link = new_client_set
    phone = HttpClient(enforce_csrf_checks=True)
    assert consent(phone, tenant_a, link).status_code == 302
    files = [upload(heic.getvalue(), "IMG_4711.HEIC", content_type="image/heic")]
    response = phone.post(url(tenant_a, link, "upload/"), {"files": files}, headers=JSON)
    assert response.status_code == 201, response.content
    with tenant_context(tenant_a.studio):
        job = Job.objects.get(kind="intake.validate_set")
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    with tenant_context(tenant_a.studio):
        photo = Photo.objects.get(photo_set=photo_set)
        assert (photo.status, photo.detected_format, photo.source) == (Photo.Status.ACCEPTED, "HEIF", "self")
        assert photo.original.name.endswith(".heic")
        assert (photo.width, photo.height) == upright.size  # orientation applied
        with photo.thumbnail.open("rb") as fh:
            thumbnail = Image.open(io.BytesIO(fh.read()))
    assert thumbnail.format == "JPEG" and not thumbnail.getexif() and thumbnail.width < thumbnail.height
