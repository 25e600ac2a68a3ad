"""Signed media links (tenants/media.py): who may open what, for how long, and what is never served."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from clients.models import Photo, UploadLink
from tenants.context import tenant_context
from tenants.media import MediaNotAllowed, make_media_token, media_salt, signed_media_url
from tenants.models import Role
from tests.conftest import Tenant, add_member
from tests.factories import build

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"jpeg-bytes" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"png-bytes" * 20


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


def make_photo(tenant: Tenant, **files: bytes) -> Photo:
    photo = build(Photo, tenant)
    with tenant_context(tenant.studio):
        for field, data in files.items():
            getattr(photo, field).save(f"{field}.jpg", ContentFile(data), save=True)
    return photo


@pytest.fixture
def photos(two_tenants: tuple[Tenant, Tenant]) -> dict[str, Photo]:
    a, b = two_tenants
    return {
        "a": make_photo(a, thumbnail=JPEG, original=JPEG, face_crop=JPEG),
        "b": make_photo(b, thumbnail=JPEG, original=JPEG, face_crop=JPEG),
    }


def url_for(tenant: Tenant, photo: Photo, field: str = "thumbnail", **kwargs: Any) -> str:
    with tenant_context(tenant.studio):
        return tenant.prefix + signed_media_url(obj=photo, field=field, **kwargs)


def forged(tenant: Tenant, **payload: Any) -> str:
    """A token signed with the tenant's own salt (a valid signature there) carrying any payload."""
    body = {"m": "clients.photo", "f": "thumbnail", "a": "m", "e": int(time.time()) + 600, **payload}
    return f"{tenant.prefix}/media/{signing.dumps(body, salt=media_salt(tenant.studio.pk), compress=True)}/"


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- what a good link gives -----------------------------------------------------------------------------------


def test_a_valid_link_streams_the_file_privately(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    url = url_for(tenant_a, photos["a"])
    assert url.startswith(f"{tenant_a.prefix}/media/")
    response = client_a.get(url)
    assert response.status_code == 200
    assert body(response) == JPEG
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline")
    assert "photo.jpg" not in response["Content-Disposition"]  # never the client's own file name
    assert response["Cache-Control"].startswith("private, max-age=")
    assert int(response["Cache-Control"].rsplit("=", 1)[1]) <= 300
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "Location" not in response


def test_inside_a_request_the_link_keeps_the_studio_prefix(tenant_a: Tenant, photos: dict[str, Photo]):
    from django.urls import set_script_prefix

    set_script_prefix(f"{tenant_a.prefix}/")
    try:
        request = RequestFactory().get("/")
        with tenant_context(tenant_a.studio):
            url = signed_media_url(obj=photos["a"], field="thumbnail", request=request)
    finally:
        set_script_prefix("/")
    assert url.startswith(f"{tenant_a.prefix}/media/")


def test_content_type_comes_from_the_bytes_not_the_name(client_a: Any, tenant_a: Tenant):
    photo = make_photo(tenant_a, thumbnail=PNG)  # stored as thumbnail.jpg
    assert client_a.get(url_for(tenant_a, photo))["Content-Type"] == "image/png"
    html = make_photo(tenant_a, thumbnail=b"<html><script>alert(1)</script></html>")
    response = client_a.get(url_for(tenant_a, html))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- links that don't work ------------------------------------------------------------------------------------


def test_an_expired_link_is_404(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    assert client_a.get(url_for(tenant_a, photos["a"], max_age=-1)).status_code == 404
    assert client_a.get(forged(tenant_a, p=photos["a"].pk, e=int(time.time()) - 1)).status_code == 404


def test_a_tampered_link_is_404(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    url = url_for(tenant_a, photos["a"])
    token = url.rstrip("/").rsplit("/", 1)[1]
    payload, signature = token.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert client_a.get(f"{tenant_a.prefix}/media/{payload}:{flipped}/").status_code == 404
    assert client_a.get(f"{tenant_a.prefix}/media/x{token}/").status_code == 404
    assert client_a.get(f"{tenant_a.prefix}/media/not-a-token/").status_code == 404
    assert client_a.get(f"{tenant_a.prefix}/media/{'a' * 2000}/").status_code == 404


def test_another_studios_link_is_404_here(client_a: Any, two_tenants: tuple[Tenant, Tenant], photos: dict[str, Photo]):
    a, b = two_tenants
    genuine_b = url_for(b, photos["b"])  # made by studio B for its photo
    assert client_a.get(a.prefix + genuine_b[len(b.prefix) :]).status_code == 404
    # Signed the way A signs but naming B's photo: the tenant-scoped lookup doesn't find it.
    assert client_a.get(forged(a, p=photos["b"].pk)).status_code == 404
    # And A's owner opening B's genuine link at B's address: not a member there.
    assert client_a.get(genuine_b).status_code == 404


def test_fields_that_are_not_whitelisted_are_404(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    with tenant_context(tenant_a.studio), pytest.raises(MediaNotAllowed):
        make_media_token(obj=photos["a"], field="face_crop")
    assert client_a.get(forged(tenant_a, p=photos["a"].pk, f="face_crop")).status_code == 404
    assert client_a.get(forged(tenant_a, p=photos["a"].pk, f="photo_set")).status_code == 404
    assert client_a.get(forged(tenant_a, m="tenants.membership", p=tenant_a.membership.pk)).status_code == 404
    assert client_a.get(forged(tenant_a, m="tenants.user", p=tenant_a.owner.pk, f="password")).status_code == 404
    assert client_a.get(forged(tenant_a, p="1")).status_code == 404  # malformed payload
    assert client_a.get(forged(tenant_a, p=photos["a"].pk, a="z:1")).status_code == 404  # unknown audience


def test_a_link_to_a_missing_file_is_404(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    url = url_for(tenant_a, photos["a"])
    photos["a"].thumbnail.storage.delete(photos["a"].thumbnail.name)
    assert client_a.get(url).status_code == 404
    empty = build(Photo, tenant_a)
    assert client_a.get(forged(tenant_a, p=empty.pk)).status_code == 404


def test_a_deleted_object_is_404(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    url = url_for(tenant_a, photos["a"])
    with tenant_context(tenant_a.studio):
        photos["a"].delete()
    assert client_a.get(url).status_code == 404


def test_there_is_no_listing_and_no_path_access(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    name = photos["a"].thumbnail.name
    for url in [
        f"{tenant_a.prefix}/media/",
        f"{tenant_a.prefix}/media/intake/",
        f"{tenant_a.prefix}/media/{name}",
        f"{tenant_a.prefix}/media/{name.rsplit('/', 1)[0]}/",
        "/media/",
        f"/media/{name}",
        f"/{name}",
        "/private-media/",
    ]:
        assert client_a.get(url).status_code == 404, url


def test_only_get_and_head(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    url = url_for(tenant_a, photos["a"])
    assert client_a.head(url).status_code == 200
    assert client_a.post(url).status_code == 405
    assert client_a.delete(url).status_code == 405


# --- who may open a link --------------------------------------------------------------------------------------


def test_member_links_need_a_member_with_the_role(client: Any, tenant_a: Tenant, tenant_b: Tenant, photos: Any):
    thumb, original = url_for(tenant_a, photos["a"]), url_for(tenant_a, photos["a"], field="original")
    assert client.get(thumb).status_code == 404  # anonymous
    client.force_login(tenant_b.owner)
    assert client.get(thumb).status_code == 404  # signed in, not a member
    client.force_login(add_member(tenant_a, "photographer@a.example", Role.PHOTOGRAPHER))
    assert client.get(thumb).status_code == 200
    assert client.get(original).status_code == 404  # originals: owners and managers only
    client.force_login(add_member(tenant_a, "staff@a.example", Role.STAFF))
    assert client.get(original).status_code == 404
    client.force_login(add_member(tenant_a, "manager@a.example", Role.MANAGER))
    assert client.get(original).status_code == 200
    assert body(client.get(original)) == JPEG


def test_api_key_links_need_that_key(client: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    from rest_framework.request import Request

    from tenants.api_keys import create_api_key, revoke_api_key

    with tenant_context(tenant_a.studio):
        key, raw = create_api_key(name="integration", created_by=tenant_a.owner)
        _, other_raw = create_api_key(name="other", created_by=tenant_a.owner)
    django_request = RequestFactory().get("/")
    django_request.studio = tenant_a.studio
    request = Request(django_request)
    request._authenticator, request._user, request._auth = None, None, key
    url = url_for(tenant_a, photos["a"], request=request)
    assert client.get(url).status_code == 404  # no key sent
    assert client.get(url, headers={"Authorization": f"Api-Key {other_raw}"}).status_code == 404
    assert client.get(url, headers={"Authorization": f"Api-Key {raw}"}).status_code == 200
    client.force_login(tenant_a.owner)
    assert client.get(url).status_code == 404  # a member's session is not the key
    with tenant_context(tenant_a.studio):
        revoke_api_key(api_key=key)
    assert client.get(url, headers={"Authorization": f"Api-Key {raw}"}).status_code == 404


def test_upload_link_links_work_without_account_while_the_link_is_usable(
    client: Any, tenant_a: Tenant, photos: dict[str, Photo]
):
    photo = photos["a"]
    with tenant_context(tenant_a.studio):
        link = UploadLink.objects.create(photo_set=photo.photo_set, expires_at=timezone.now() + timezone.timedelta(1))
        other_link = build(UploadLink, tenant_a)  # a link of another photo set
    url = url_for(tenant_a, photo, upload_link=link)
    assert client.get(url).status_code == 200
    assert client.get(url_for(tenant_a, photo, upload_link=other_link)).status_code == 404  # not its set
    assert client.get(forged(tenant_a, p=photo.pk, f="original", a=f"l:{link.pk}")).status_code == 404
    with tenant_context(tenant_a.studio):
        UploadLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    assert client.get(url).status_code == 404  # revoking the upload link kills its media links


def test_the_self_upload_page_request_makes_link_audience_urls(client: Any, tenant_a: Tenant, photos: Any):
    from django.urls import ResolverMatch

    photo = photos["a"]
    with tenant_context(tenant_a.studio):
        link = UploadLink.objects.create(photo_set=photo.photo_set, expires_at=timezone.now() + timezone.timedelta(1))
    request = RequestFactory().get("/")
    request.resolver_match = ResolverMatch(lambda r: None, (), {"link_token": link.token})
    url = url_for(tenant_a, photo, request=request)
    assert client.get(url).status_code == 200  # anonymous, like the client on their phone


def test_template_tag(tenant_a: Tenant, photos: dict[str, Photo]):
    template = Template(
        '{% load media_tags %}<img src="{% signed_media photo "thumbnail" %}">|{% signed_media empty "thumbnail" %}|'
    )
    empty = build(Photo, tenant_a)
    with tenant_context(tenant_a.studio):
        html = template.render(Context({"photo": photos["a"], "empty": empty}))
    assert '<img src="/media/' in html
    assert html.endswith("||")


# --- links that stay the same, so browsers keep the images ----------------------------------------------------


def test_a_link_drawn_again_soon_is_the_same_url_and_still_expires(
    client_a: Any, tenant_a: Tenant, photos: dict[str, Photo], monkeypatch: pytest.MonkeyPatch
):
    made_at = int(time.time())  # link_expiry counts from the whole second the link is made in
    first = url_for(tenant_a, photos["a"])
    assert url_for(tenant_a, photos["a"]) == first  # the page drawn again: the browser's cached image is used
    assert url_for(tenant_a, photos["a"], field="original") != first
    assert client_a.get(first).status_code == 200
    # Expiry: asked for 600 s, rounded up to a step of 150 s (a quarter), so at most 750 s.
    token = first.rstrip("/").rsplit("/", 1)[1]
    expiry = signing.Signer(salt=media_salt(tenant_a.studio.pk)).unsign_object(token)["e"]
    assert made_at + 600 <= expiry <= int(time.time()) + 750 and expiry % 150 == 0
    monkeypatch.setattr(time, "time", lambda: expiry + 1)
    assert client_a.get(first).status_code == 404


@pytest.mark.parametrize("age", [60, 600, 3600, 86_400])
def test_link_expiry_never_comes_before_the_age_asked_nor_more_than_a_step_after(age: int):
    from tenants.media import link_expiry

    step = min(age // 4, 900)
    for now in (1_700_000_000, 1_700_000_001, 1_700_000_000 + step - 1, 1_700_000_123.9):
        expiry = link_expiry(age, now=now)
        assert int(now) + age <= expiry < int(now) + age + step and expiry % step == 0


def test_a_timestamped_link_of_before_still_opens(client_a: Any, tenant_a: Tenant, photos: dict[str, Photo]):
    assert client_a.get(forged(tenant_a, p=photos["a"].pk)).status_code == 200  # signing.dumps, as links were made
