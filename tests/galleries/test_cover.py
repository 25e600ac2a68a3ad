"""The gallery cover (issue 19, part 6): the studio's own cover on the branding page (an untrusted upload, stored
as a clean JPEG, served as public branding), and a gallery's choice of one of its portraits instead; the client's
gallery shows the gallery's portrait, else the studio's cover, else none."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from galleries import services
from galleries.models import Gallery
from tenants.context import tenant_context
from tenants.models import Studio
from tests.conftest import Tenant
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    _fresh_cache,
    make_scene,
    private_storage_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

COVER_IMG = re.compile(r'<figure class="g-cover"><img src="([^"]+)"')


def _jpeg(size: tuple[int, int] = (3000, 1000), *, exif: bool = True) -> bytes:
    image = Image.new("RGB", size, (20, 90, 120))
    out = io.BytesIO()
    data = Image.Exif()
    data[0x010F] = "Secret Camera"  # Make
    data[0x8825] = {2: (51.0, 30.0, 0.0)}  # a GPS position
    image.save(out, format="JPEG", exif=data.tobytes() if exif else b"")
    return out.getvalue()


def _brand(client: Client, tenant: Tenant, **fields: Any) -> Any:
    data = {"primary_color": "#0f766e", "watermark_text": "Lumière", **fields}
    return client.post(f"{tenant.prefix}/branding/", data)


def _cover_of(client: Client, url: str) -> str | None:
    page = client.get(url)
    assert page.status_code == 200
    found = COVER_IMG.search(page.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_owner_uploads_a_gallery_cover_stored_clean_and_served_as_branding(
    client_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("cover.jpg", _jpeg(), content_type="image/jpeg")
    assert _brand(client_a, tenant_a, gallery_cover=upload).status_code == 302
    studio = Studio.objects.get(pk=tenant_a.studio.pk)
    with studio.gallery_cover.open("rb") as handle:
        stored = Image.open(io.BytesIO(handle.read()))
    assert stored.format == "JPEG" and stored.size == (2400, 800) and not stored.getexif()  # no camera, no GPS
    page = client_a.get(f"{tenant_a.prefix}/branding/").content.decode()
    assert "Current gallery cover" in page and 'class="branding-preview-cover"' in page
    # Public branding, like the logo: a client's browser (no account) loads it.
    served = Client().get(f"{tenant_a.prefix}/branding/cover/")
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"

    # Replaced: the old file goes once the new one is saved; removed: none left.
    first = studio.gallery_cover.name
    with django_capture_on_commit_callbacks(execute=True):
        upload = SimpleUploadedFile("c.jpg", _jpeg((1200, 800)), content_type="image/jpeg")
        assert _brand(client_a, tenant_a, gallery_cover=upload).status_code == 302
    studio.refresh_from_db()
    assert studio.gallery_cover.name != first and not studio.gallery_cover.storage.exists(first)
    second = studio.gallery_cover.name
    with django_capture_on_commit_callbacks(execute=True):
        assert _brand(client_a, tenant_a, remove_gallery_cover="on").status_code == 302
    studio.refresh_from_db()
    assert not studio.gallery_cover and not studio.gallery_cover.storage.exists(second)
    assert Client().get(f"{tenant_a.prefix}/branding/cover/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "name", "message"),
    [
        (b"%PDF-1.4 not a picture", "cover.jpg", "This cover can’t be used:"),
        (_jpeg((500, 300)), "small.jpg", "This cover can’t be used:"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "cover.svg", "This cover can’t be used:"),
    ],
    ids=["not-an-image", "too-small", "svg"],
)
def test_a_bad_cover_is_refused_with_the_reason_and_the_old_one_stays(
    client_a: Client, tenant_a: Tenant, payload: bytes, name: str, message: str
) -> None:
    upload = SimpleUploadedFile("cover.jpg", _jpeg((1200, 800)), content_type="image/jpeg")
    assert _brand(client_a, tenant_a, gallery_cover=upload).status_code == 302
    before = Studio.objects.get(pk=tenant_a.studio.pk)
    response = _brand(client_a, tenant_a, gallery_cover=SimpleUploadedFile(name, payload, "image/jpeg"))
    assert response.status_code == 400
    assert message in response.content.decode()
    after = Studio.objects.get(pk=tenant_a.studio.pk)
    assert after.gallery_cover.name == before.gallery_cover.name and after.gallery_cover.storage.exists(
        after.gallery_cover.name
    )


def test_the_clients_gallery_shows_its_portrait_else_the_studios_cover_else_none(
    client_a: Client, two_tenants: Any
) -> None:
    a, b = two_tenants
    scene = make_scene(a, count=3)
    anonymous = Client()
    assert _cover_of(anonymous, scene.url) is None  # neither: no cover at all

    upload = SimpleUploadedFile("cover.jpg", _jpeg((1200, 800)), content_type="image/jpeg")
    assert _brand(client_a, a, gallery_cover=upload).status_code == 302
    studio_cover = _cover_of(anonymous, scene.url)
    assert studio_cover is not None and studio_cover.startswith(f"{a.prefix}/branding/cover/?v=")
    assert anonymous.get(studio_cover).status_code == 200

    # The studio picks the second portrait on the gallery's page: its watermarked preview, signed for the gallery.
    cover = scene.portraits[1]
    detail = client_a.get(f"{a.prefix}/galleries/{scene.gallery.pk}/").content.decode()
    assert f'id="cover-{cover.pk}"' in detail and "Use as cover" in detail
    response = client_a.post(f"{a.prefix}/galleries/{scene.gallery.pk}/cover/", {"portrait": cover.pk})
    assert response.status_code == 302
    with tenant_context(a.studio):
        assert Gallery.objects.get(pk=scene.gallery.pk).cover_portrait_id == cover.pk
    chosen = _cover_of(anonymous, scene.url)
    assert chosen is not None and "/media/" in chosen and chosen != studio_cover
    served = anonymous.get(chosen)
    assert served.status_code == 200
    with cover.preview.open("rb") as handle:
        assert b"".join(served.streaming_content) == handle.read()  # the watermarked preview, never the image

    # Taken out of the gallery, it is no longer the cover: the studio's cover again.
    with tenant_context(a.studio):
        services.remove_portrait(gallery=scene.gallery, portrait=cover.pk)
        assert Gallery.objects.get(pk=scene.gallery.pk).cover_portrait_id is None
    assert _cover_of(anonymous, scene.url) == studio_cover


def test_a_cover_must_be_one_of_the_gallerys_portraits(client_a: Client, two_tenants: Any) -> None:
    a, b = two_tenants
    scene = make_scene(a, count=2)
    other_studio = make_scene(b, count=1)
    url = f"{a.prefix}/galleries/{scene.gallery.pk}/cover/"
    for portrait, why in (
        (scene.other_portraits[0], "another client's portrait of the same studio"),
        (other_studio.portraits[0], "another studio's portrait"),
    ):
        response = client_a.post(url, {"portrait": portrait.pk})
        assert response.status_code == 400, why
        assert f"Portrait #{portrait.pk} is not in this gallery: add it first." in response.content.decode(), why
    assert client_a.post(url, {"portrait": "not-a-number"}).status_code == 400
    with tenant_context(a.studio):
        assert Gallery.objects.get(pk=scene.gallery.pk).cover_portrait_id is None
    # Back to the studio's cover: an empty choice.
    with tenant_context(a.studio):
        services.set_cover(gallery=scene.gallery, portrait=scene.portraits[0])
    assert client_a.post(url, {"portrait": ""}).status_code == 302
    with tenant_context(a.studio):
        assert Gallery.objects.get(pk=scene.gallery.pk).cover_portrait_id is None


def test_the_api_sets_and_clears_the_cover(client_a: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, count=2)
    url = f"{a.prefix}/api/galleries/{scene.gallery.pk}/"
    pick = scene.portraits[0].pk
    response = client_a.patch(url, {"cover_portrait": pick}, content_type="application/json")
    assert response.status_code == 200 and response.json()["cover_portrait_id"] == pick
    refused = client_a.patch(url, {"cover_portrait": scene.other_portraits[0].pk}, content_type="application/json")
    assert refused.status_code == 400 and "is not in this gallery" in refused.content.decode()
    cleared = client_a.patch(url, {"cover_portrait": None}, content_type="application/json")
    assert cleared.status_code == 200 and cleared.json()["cover_portrait_id"] is None
