"""Photo files through signed media links on the real pages: the studio's set page, the client's self-upload
page, and what the privacy lifecycle does to the links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client as HttpClient

from clients import services
from clients.models import Photo, PhotoSet
from tenants.context import tenant_context
from tenants.media import signed_media_url
from tests.clients.conftest import fixture_bytes, reload
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

IMG = re.compile(r'<img src="([^"]+/media/[^"]+)"')


@pytest.fixture
def checked_photo(tenant_a: Tenant, photo_set: PhotoSet, add: Any, validate: Any) -> Photo:
    photo = add(fixture_bytes("person_a_01.jpg"), "person_a_01.jpg")
    validate()
    photo = reload(tenant_a, photo)
    assert photo.thumbnail and photo.original
    return photo


def set_page(tenant: Tenant, photo_set: PhotoSet) -> str:
    return f"{tenant.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/"


def test_the_set_page_shows_thumbnails_through_signed_links(
    client_a: HttpClient, tenant_a: Tenant, photo_set: PhotoSet, checked_photo: Photo
):
    html = client_a.get(set_page(tenant_a, photo_set)).content.decode()
    urls = IMG.findall(html)
    assert urls and all(u.startswith(f"{tenant_a.prefix}/media/") for u in urls)
    assert checked_photo.thumbnail.name not in html and checked_photo.original.name not in html
    response = client_a.get(urls[0])
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"
    anonymous = HttpClient()
    assert anonymous.get(urls[0]).status_code == 404  # a member's link is not a public URL


def test_the_clients_own_page_shows_thumbnails_while_the_link_works(
    tenant_a: Tenant, photo_set: PhotoSet, checked_photo: Photo
):
    with tenant_context(tenant_a.studio):
        link = services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)
    phone = HttpClient()  # no account
    html = phone.get(f"{tenant_a.prefix}/u/{link.token}/").content.decode()
    urls = IMG.findall(html)
    assert urls
    assert phone.get(urls[0]).status_code == 200
    with tenant_context(tenant_a.studio):
        services.revoke_upload_link(link=link)
    assert phone.get(urls[0]).status_code == 404  # revoking the upload link kills its picture links too


def test_after_the_purge_originals_are_gone_and_thumbnails_kept(
    client_a: HttpClient, tenant_a: Tenant, photo_set: PhotoSet, checked_photo: Photo
):
    with tenant_context(tenant_a.studio):
        original = tenant_a.prefix + signed_media_url(obj=checked_photo, field="original")
        thumbnail = tenant_a.prefix + signed_media_url(obj=checked_photo, field="thumbnail")
    assert client_a.get(original).status_code == 200  # the owner may open the original while it exists
    with tenant_context(tenant_a.studio):
        services.purge_photo_set_files(photo_set=photo_set, kind="retention")
    assert client_a.get(original).status_code == 404
    assert client_a.get(thumbnail).status_code == 200


def test_after_erasure_every_link_is_404(
    client_a: HttpClient, tenant_a: Tenant, photo_set: PhotoSet, checked_photo: Photo
):
    with tenant_context(tenant_a.studio):
        thumbnail = tenant_a.prefix + signed_media_url(obj=checked_photo, field="thumbnail")
        services.erase_client(client=photo_set.client, performed_by=tenant_a.owner)
    assert client_a.get(thumbnail).status_code == 404


def test_studio_b_cannot_open_studio_as_thumbnail(
    client: HttpClient, two_tenants: tuple[Tenant, Tenant], photo_set: PhotoSet, checked_photo: Photo
):
    a, b = two_tenants
    with tenant_context(a.studio):
        path = signed_media_url(obj=checked_photo, field="thumbnail")
    client.force_login(b.owner)
    assert client.get(b.prefix + path).status_code == 404  # under B's address
    assert client.get(a.prefix + path).status_code == 404  # at A's address, B's owner is no member
