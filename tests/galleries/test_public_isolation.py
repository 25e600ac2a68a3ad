"""A gallery link never shows another client's or another studio's portrait: the client's side filters by the
gallery AND by its client in every query (an entry of another client, added by mistake, is invisible
everywhere), a hidden portrait is out, another studio's ids are 404, and a media link made for one gallery
serves through no other."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from galleries.models import GalleryPortrait
from generation.models import Portrait
from tenants.context import tenant_context
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    _fresh_cache,
    entitle,
    forged_token,
    make_gallery,
    make_scene,
    private_storage_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def test_another_clients_portrait_added_by_mistake_is_never_shown(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 2)
    stray = scene.other_portraits[0]
    with tenant_context(a.studio):
        # Bypassing the studio's services (which refuse it): a row pointing at another client's portrait.
        GalleryPortrait.objects.create(gallery=scene.gallery, portrait=stray, position=1)
        entitle(scene.gallery, stray)
    html = client.get(scene.url).content.decode()
    assert f'id="p-{stray.pk}"' not in html and f"/p/{stray.pk}/" not in html
    assert len(re.findall(r'class="g-tile[ "]', html)) == 2
    assert "1 portrait" not in html and "2 portraits" in html
    for action in ("", "favorite/", "more/", "download/"):
        url = f"{scene.url}p/{stray.pk}/{action}"
        response = client.get(url) if not action else client.post(url, {"size": "full"})
        assert response.status_code == 404, url
    with tenant_context(a.studio):
        assert not GalleryPortrait.objects.get(gallery=scene.gallery, portrait=stray).is_favorite
    # Its files through the gallery's audience: the preview and the (entitled!) full image are both 404.
    audience = f"g:{scene.gallery.pk}"
    for field in ("preview", "image"):
        token = forged_token(a.studio.pk, stray.pk, field, audience)
        assert client.get(f"{a.prefix}/media/{token}/").status_code == 404
    # The ZIP leaves it out too.
    response = client.post(f"{scene.url}download-all/")
    assert response.status_code == 404  # nothing of the client's own is entitled


def test_a_hidden_portrait_is_not_shown(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 3)
    hidden = scene.portraits[1]
    with tenant_context(a.studio):
        Portrait.objects.filter(pk=hidden.pk).update(is_hidden=True)
    html = client.get(scene.url).content.decode()
    assert f'id="p-{hidden.pk}"' not in html and "2 portraits" in html
    assert client.get(scene.portrait_url(hidden)).status_code == 404
    token = forged_token(a.studio.pk, hidden.pk, "preview", f"g:{scene.gallery.pk}")
    assert client.get(f"{a.prefix}/media/{token}/").status_code == 404


def test_another_studios_portraits_and_galleries_are_404(client: Client, two_tenants: Any) -> None:
    a, b = two_tenants
    ours = make_scene(a, 1)
    theirs = make_scene(b, 1)
    their_portrait = theirs.portraits[0]
    # Their portrait id with our gallery: not in our gallery, not even in our studio.
    assert client.get(ours.portrait_url(their_portrait)).status_code == 404
    for action in ("favorite", "more", "download"):
        assert client.post(ours.portrait_url(their_portrait, action)).status_code == 404
    # Their gallery's token on our address, and our studio's audience naming their gallery.
    assert client.get(f"{a.prefix}/g/{theirs.gallery.token}/").status_code == 404
    token = forged_token(a.studio.pk, their_portrait.pk, "preview", f"g:{theirs.gallery.pk}")
    assert client.get(f"{a.prefix}/media/{token}/").status_code == 404
    # A genuine preview link of their gallery, taken to our address: their signature is wrong here.
    their_links = re.findall(r'<img src="([^"]+/media/[^"]+/)"', client.get(theirs.url).content.decode())
    assert client.get(their_links[0]).status_code == 200
    assert client.get(their_links[0].replace(b.prefix, a.prefix)).status_code == 404


def test_a_media_link_made_for_one_gallery_serves_through_no_other(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    locked = make_scene(a, 1, password=PASSWORD)
    with tenant_context(a.studio):
        # A second gallery of the same client, open, without the portrait of the first.
        extra = make_gallery(locked.client, [])
    portrait = locked.portraits[0]
    assert client.get(f"{a.prefix}/g/{extra.token}/").status_code == 200  # this browser may see `extra`
    for audience in (f"g:{extra.pk}", f"g:{locked.gallery.pk}"):  # not in it / not unlocked
        token = forged_token(a.studio.pk, portrait.pk, "preview", audience)
        assert client.get(f"{a.prefix}/media/{token}/").status_code == 404, audience
    client.post(f"{locked.url}unlock/", {"password": PASSWORD})
    assert (
        client.get(
            f"{a.prefix}/media/{forged_token(a.studio.pk, portrait.pk, 'preview', f'g:{locked.gallery.pk}')}/"
        ).status_code
        == 200
    )
    # The thumbnail (not watermarked) is never served to a gallery; nor a preview "variant".
    for field, extra_payload in (("thumbnail", {}), ("preview", {"v": "web"})):
        token = forged_token(a.studio.pk, portrait.pk, field, f"g:{locked.gallery.pk}", **extra_payload)
        assert client.get(f"{a.prefix}/media/{token}/").status_code == 404
    # A gallery audience with a malformed id.
    token = forged_token(a.studio.pk, portrait.pk, "preview", "g:abc")
    assert client.get(f"{a.prefix}/media/{token}/").status_code == 404
