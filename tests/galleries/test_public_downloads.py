"""Previews are watermarked; full resolution needs an entitlement: the grid and the viewer serve the stored
watermarked preview (never the full image nor the clean thumbnail); a download is counted on an active
entitlement of the gallery and sent through an expiring signed link (PNG without watermark, or the 2048 px web
JPEG), refused past its limit, 404 without an entitlement or once it is revoked; "Download all" is a streamed ZIP
of every entitled portrait, counted once per portrait."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from galleries.models import Entitlement, GalleryEvent
from tenants.context import tenant_context
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    _fresh_cache,
    entitle,
    forged_token,
    image_of,
    make_scene,
    private_storage_fixture,
    streamed,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _stored(tenant: Any, portrait: Any, field: str) -> bytes:
    with tenant_context(tenant.studio):
        handle = getattr(portrait, field)
        handle.open("rb")
        try:
            return handle.read()
        finally:
            handle.close()


def _links(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+/media/[^"]+/)"', html)


def _difference(a: bytes, b: bytes) -> float:
    first, second = np.asarray(image_of(a).convert("RGB"), float), np.asarray(image_of(b).convert("RGB"), float)
    assert first.shape == second.shape
    return float(np.abs(first - second).mean())


def test_the_grid_and_the_viewer_show_watermarked_previews_only(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 2)
    html = client.get(scene.url).content.decode()
    links = _links(html)
    assert len(links) == 2
    for link, portrait in zip(links, scene.portraits, strict=True):
        response = client.get(link)
        served = streamed(response)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert response["Content-Disposition"].startswith("inline")
        assert served == _stored(a, portrait, "preview")
        assert served != _stored(a, portrait, "image") and served != _stored(a, portrait, "thumbnail")
        # The preview really carries the watermark: visibly different from the clean full image.
        assert _difference(served, _stored(a, portrait, "image")) > 5
    # The single-portrait page (the viewer without JavaScript) shows the same preview.
    page = client.get(scene.portrait_url(scene.portraits[0])).content.decode()
    assert streamed(client.get(_links(page)[0])) == _stored(a, scene.portraits[0], "preview")
    # No other media link anywhere on the page (no full image, no clean thumbnail).
    assert sorted(re.findall(r"/media/[^\"'<> ]+/", html)) == sorted(link.split(a.prefix)[1] for link in links)


def test_full_resolution_needs_an_entitlement(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 2)
    portrait = scene.portraits[0]
    html = client.get(scene.url).content.decode()
    assert "g-download-form" not in html and "Download all" not in html  # no entitlement: no download at all
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "full"}).status_code == 404
    # A guessed full-resolution link (signed as the studio signs, for this gallery) is 404 too.
    guessed = f"{a.prefix}/media/{forged_token(a.studio.pk, portrait.pk, 'image', f'g:{scene.gallery.pk}')}/"
    assert client.get(guessed).status_code == 404

    with tenant_context(a.studio):
        entitlement = entitle(scene.gallery, portrait, limit=2)
    html = client.get(scene.url).content.decode()
    assert html.count("g-download-form") == 1 and "Download all" in html
    response = client.post(scene.portrait_url(portrait, "download"), {"size": "full"})
    assert response.status_code == 303
    link = response["Location"]
    assert re.fullmatch(rf"{a.prefix}/media/[\w:.-]+/", link)
    file = client.get(link)
    assert file.status_code == 200 and file["Content-Type"] == "image/png"
    assert file["Content-Disposition"] == f'attachment; filename="portrait-{portrait.pk}-image.png"'
    assert streamed(file) == _stored(a, portrait, "image")  # the full PNG, no watermark
    assert client.get(guessed).status_code == 200  # entitled now
    # Only the entitled portrait: the other is still 404.
    assert client.post(scene.portrait_url(scene.portraits[1], "download"), {"size": "full"}).status_code == 404
    # The limit: 2 downloads, then a clear refusal.
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "full"}).status_code == 303
    third = client.post(scene.portrait_url(portrait, "download"), {"size": "full"})
    assert third.status_code == 403
    assert "You have used all 2 downloads of this portrait." in text(third)
    with tenant_context(a.studio):
        assert Entitlement.objects.get(pk=entitlement.pk).downloads == 2
        assert GalleryEvent.objects.filter(kind=GalleryEvent.Kind.DOWNLOAD, portrait=portrait).count() == 2
    # The portrait page says so, and the size it doesn't have is refused.
    assert "No downloads left" in client.get(scene.portrait_url(portrait)).content.decode()
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "web"}).status_code == 404
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "poster"}).status_code == 400
    # Revoked (a refund): the link it gave is dead at once, and there is no download any more.
    with tenant_context(a.studio):
        Entitlement.objects.filter(pk=entitlement.pk).update(revoked_at=timezone.now())
    assert client.get(link).status_code == 404
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "full"}).status_code == 404
    # Un-revoked: a new link works again (who else may use it: test_download_links_are_bound_as_the_docs_say).
    with tenant_context(a.studio):
        Entitlement.objects.filter(pk=entitlement.pk).update(revoked_at=None, downloads=0)
    fresh = client.post(scene.portrait_url(portrait, "download"), {"size": "full"})["Location"]
    assert client.get(fresh).status_code == 200


def test_unlimited_and_web_size_downloads(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1)
    portrait = scene.portraits[0]
    with tenant_context(a.studio):
        entitle(scene.gallery, portrait, size="web", limit=0)
    page = client.get(scene.portrait_url(portrait)).content.decode()
    assert "Unlimited downloads" in page and "Web size (2048 px)" in page and "Full resolution" not in page
    for _ in range(3):
        response = client.post(scene.portrait_url(portrait, "download"), {"size": "web"})
        assert response.status_code == 303
    file = client.get(response["Location"])
    data = streamed(file)
    assert file.status_code == 200 and file["Content-Type"] == "image/jpeg"
    assert file["Content-Disposition"] == f'attachment; filename="portrait-{portrait.pk}-web.jpg"'
    web = image_of(data)
    assert web.format == "JPEG" and web.size == (160, 200) and not web.info.get("exif")  # never upscaled
    # The clean image (JPEG noise only), not the watermarked preview.
    png = _stored(a, portrait, "image")
    assert _difference(data, png) < 3 < _difference(_stored(a, portrait, "preview"), png)
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "full"}).status_code == 404


def test_download_all_is_a_zip_of_the_entitled_portraits_counted_once_each(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 3)
    first, second, third = scene.portraits
    with tenant_context(a.studio):
        full = entitle(scene.gallery, first, limit=1)
        web = entitle(scene.gallery, second, size="web", limit=5)
    response = client.post(f"{scene.url}download-all/")
    assert response.status_code == 303 and response["Location"].startswith(f"{scene.url}zip/?t=")
    archive = client.get(response["Location"])
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    assert archive["Content-Disposition"] == 'attachment; filename="spring-portraits.zip"'
    assert archive.streaming
    with zipfile.ZipFile(io.BytesIO(streamed(archive))) as zipped:
        names = zipped.namelist()
        assert names == [f"spring-portraits-001-{first.pk}.png", f"spring-portraits-002-{second.pk}-web.jpg"]
        assert zipped.read(names[0]) == _stored(a, first, "image")
        assert image_of(zipped.read(names[1])).format == "JPEG"
        assert zipped.testzip() is None
    with tenant_context(a.studio):
        assert Entitlement.objects.get(pk=full.pk).downloads == 1
        assert Entitlement.objects.get(pk=web.pk).downloads == 1
        assert GalleryEvent.objects.filter(kind=GalleryEvent.Kind.ZIP).count() == 1
    # The first is used up: the next ZIP has the second only.
    again = client.post(f"{scene.url}download-all/")
    with zipfile.ZipFile(io.BytesIO(streamed(client.get(again["Location"])))) as zipped:
        assert zipped.namelist() == [f"spring-portraits-002-{second.pk}-web.jpg"]
    # A tampered or foreign ZIP link is 404; so is the link of a ZIP whose entitlements were revoked since.
    assert client.get(f"{scene.url}zip/?t=nope").status_code == 404
    other = make_scene(a, 1)
    assert client.get(f"{other.url}zip/?t={again['Location'].split('t=')[1]}").status_code == 404
    with tenant_context(a.studio):
        Entitlement.objects.filter(pk=web.pk).update(revoked_at=timezone.now())
    assert client.get(again["Location"]).status_code == 404
    # Nothing left to download.
    refused = client.post(f"{scene.url}download-all/")
    assert refused.status_code == 403 and "used all the downloads" in text(refused)


def test_download_links_are_bound_as_the_docs_say(client: Client, two_tenants: Any, monkeypatch: Any) -> None:
    """Finding 8 (issue 13), docs/galleries.md "How a download link is bound": for a gallery without password or
    PIN a download link and a ZIP link work from any browser, without cookies, for GALLERY_DOWNLOAD_LINK_SECONDS
    (120 s), and not after; for a gallery with a PIN (or a password) they work only in the browser session that
    typed it."""
    import time

    a, _ = two_tenants

    def links(scene: Any, browser: Client) -> tuple[str, str]:
        with tenant_context(a.studio):
            entitle(scene.gallery, scene.portraits[0], limit=0)
        single = browser.post(scene.portrait_url(scene.portraits[0], "download"), {"size": "full"})
        zipped = browser.post(f"{scene.url}download-all/")
        assert single.status_code == 303 and zipped.status_code == 303
        return single["Location"], zipped["Location"]

    # No password, no PIN: the links are bearer links for their lifetime.
    open_scene = make_scene(a, 1)
    link, zip_link = links(open_scene, client)
    stranger = Client()  # another browser, no cookies at all
    file = stranger.get(link)
    assert file.status_code == 200 and streamed(file) == _stored(a, open_scene.portraits[0], "image")
    archive = stranger.get(zip_link)
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    streamed(archive)
    later = time.time() + 121  # past the 120 s: dead for everyone, the browser that made them included
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: later)
        assert client.get(link).status_code == 404 and Client().get(link).status_code == 404
        assert client.get(zip_link).status_code == 404 and Client().get(zip_link).status_code == 404

    # A PIN: the links work in the browser that typed it, not in another one.
    pin_scene = make_scene(a, 1, pin="4321")
    owner = Client()
    assert owner.post(f"{pin_scene.url}pin/", {"pin": "4321"}).status_code == 302
    link, zip_link = links(pin_scene, owner)
    assert owner.get(link).status_code == 200 and owner.get(zip_link).status_code == 200
    assert Client().get(link).status_code == 404
    refused = Client().get(zip_link)
    assert refused.status_code == 302 and refused["Location"] == f"{pin_scene.url}pin/"

    # A password: the same, bound to the session that typed it.
    password_scene = make_scene(a, 1, password="open sesame")
    owner = Client()
    assert owner.post(f"{password_scene.url}unlock/", {"password": "open sesame"}).status_code == 302
    link, zip_link = links(password_scene, owner)
    assert owner.get(link).status_code == 200 and owner.get(zip_link).status_code == 200
    assert Client().get(link).status_code == 404
    assert Client().get(zip_link)["Content-Type"] != "application/zip"
