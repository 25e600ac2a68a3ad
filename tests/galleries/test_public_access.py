"""The client's gallery link: open galleries, the password gate (right, wrong, throttled, bound to the current
password hash), the download PIN, expired and revoked links (410 pages), unknown tokens and another studio's
(404, whatever the method), the studio's branding, and CSRF on every POST."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone

from galleries.models import Gallery, GalleryEvent
from tenants.context import tenant_context
from tenants.models import Studio
from tests.conftest import Tenant
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    PIN,
    _fresh_cache,
    entitle,
    make_scene,
    private_storage_fixture,
    streamed,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

METHODS = ("get", "post", "put", "patch", "delete")


def _events(tenant: Tenant, gallery: Gallery, kind: str) -> int:
    with tenant_context(tenant.studio):
        return GalleryEvent.objects.filter(gallery=gallery, kind=kind).count()


def _preview_links(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+/media/[^"]+/)" alt="Portrait', html)


# --- An open gallery, with the studio's branding --------------------------------------------------------------


def test_an_open_gallery_shows_its_portraits_with_the_studios_branding(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(
        contact_email="hello@studio-a.example", custom_domain="portraits.a.example"
    )
    a.studio.refresh_from_db()
    scene = make_scene(a, 3)
    response = client.get(scene.url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Spring portraits" in html and "Hello! Choose your favorites." in html
    assert 'data-css-accent="#aa3366"' in html  # the studio's colour (--accent, by static/js/css-vars.js)
    assert "Studio A" in html and "mailto:hello@studio-a.example" in html and "portraits.a.example" in html
    assert 'class="mainnav"' not in html and "Sign out" not in html  # no platform navigation
    assert len(_preview_links(html)) == 3
    assert response["Cache-Control"] == "private, no-store" and "noindex" in response["X-Robots-Tag"]
    assert "Open until" in html
    # A view is counted once per browser session and day.
    client.get(scene.url)
    assert _events(a, scene.gallery, GalleryEvent.Kind.VIEW) == 1
    assert Client().get(scene.url).status_code == 200
    assert _events(a, scene.gallery, GalleryEvent.Kind.VIEW) == 2


def test_the_logo_is_shown_when_the_studio_has_one(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(logo="studio-logos/a.png")
    scene = make_scene(a, 1)
    html = client.get(scene.url).content.decode()
    assert f'src="{a.prefix}/branding/logo/"' in html


def test_the_expiry_notice_warns_in_the_last_days(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1, expires_in=timedelta(days=2, hours=1))
    assert "This gallery closes on" in client.get(scene.url).content.decode()
    never = make_scene(a, 1, expires_in=None)
    html = client.get(never.url).content.decode()
    assert "closes on" not in html and "Open until" not in html


# --- Unknown, another studio's, revoked, expired ---------------------------------------------------------------


@pytest.mark.parametrize("token", ["no-such-gallery-token-at-all", "x", "a" * 65, "bad token with spaces"])
def test_an_unknown_token_is_a_clear_404_page(client: Client, two_tenants: Any, token: str) -> None:
    a, _ = two_tenants
    response = client.get(f"{a.prefix}/g/{token}/")
    assert response.status_code == 404
    assert "Gallery not found" in response.content.decode() and "Studio A" in response.content.decode()


def test_another_studios_token_is_unknown_here_whatever_the_path_and_method(client: Client, two_tenants: Any) -> None:
    a, b = two_tenants
    theirs = make_scene(b, 2)
    for suffix in ("", "unlock/", "pin/", "updates/", "download-all/", "zip/"):
        for method in METHODS:
            url = f"{a.prefix}/g/{theirs.gallery.token}/{suffix}"
            assert getattr(client, method)(url).status_code == 404, (method, url)
    for action in ("", "favorite/", "more/", "download/"):
        for method in METHODS:
            url = f"{a.prefix}/g/{theirs.gallery.token}/p/{theirs.portraits[0].pk}/{action}"
            assert getattr(client, method)(url).status_code == 404, (method, url)
    # ... and its page at its own studio works (the 404 is the scoping, not a broken gallery).
    assert client.get(theirs.url).status_code == 200


def test_a_revoked_link_gets_a_410_page_naming_the_studio_and_its_contact(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(contact_email="hello@studio-a.example")
    scene = make_scene(a, 2)
    previews = _preview_links(client.get(scene.url).content.decode())
    with tenant_context(a.studio):
        Gallery.objects.filter(pk=scene.gallery.pk).update(revoked_at=timezone.now())
    for url in (scene.url, scene.portrait_url(scene.portraits[0]), scene.portrait_url(scene.portraits[0], "favorite")):
        response = client.get(url) if not url.endswith("favorite/") else client.post(url)
        html = response.content.decode()
        assert response.status_code == 410
        assert "This gallery link was turned off by Studio A." in html
        assert "hello@studio-a.example" in html
    # Its media links die with it.
    assert client.get(previews[0]).status_code == 404


def test_an_expired_gallery_gets_a_410_page_with_its_closing_date(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1)
    closed = timezone.now() - timedelta(days=3)
    with tenant_context(a.studio):
        Gallery.objects.filter(pk=scene.gallery.pk).update(expires_at=closed)
    response = client.get(scene.url)
    html = response.content.decode()
    assert response.status_code == 410
    assert f"This gallery closed on {timezone.localtime(closed):%-d %B %Y}." in html
    assert "Studio A can open it again for you" in html
    # An htmx poll of a gallery that closed meanwhile reloads the page (which then shows why).
    poll = client.get(f"{scene.url}updates/", headers={"HX-Request": "true"})
    assert poll.status_code == 410 and poll["HX-Refresh"] == "true"


# --- The password ---------------------------------------------------------------------------------------------


def test_the_password_opens_the_gallery_and_a_wrong_one_says_so(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 2, password=PASSWORD)
    page = client.get(scene.url)
    html = page.content.decode()
    assert page.status_code == 200 and "Your private gallery" in html and 'name="password"' in html
    assert "Spring portraits" not in html and not _preview_links(html)  # nothing before the password
    # Every other page of the gallery sends the browser to the password page.
    assert client.get(scene.portrait_url(scene.portraits[0])).status_code == 302
    assert client.post(scene.portrait_url(scene.portraits[0], "favorite")).status_code == 302
    htmx = client.post(scene.portrait_url(scene.portraits[0], "favorite"), headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx["HX-Redirect"] == scene.url

    wrong = client.post(f"{scene.url}unlock/", {"password": "not-it"})
    assert wrong.status_code == 403 and "That password isn't right" in text(wrong)
    assert client.post(f"{scene.url}unlock/", {}).status_code == 403
    assert client.post(f"{scene.url}unlock/", {"password": "x" * 5000}).status_code == 403

    right = client.post(f"{scene.url}unlock/", {"password": f" {PASSWORD} "})  # a phone keyboard's spaces
    assert right.status_code == 302 and right["Location"] == scene.url
    opened = client.get(scene.url).content.decode()
    assert "Spring portraits" in opened and len(_preview_links(opened)) == 2
    assert _events(a, scene.gallery, GalleryEvent.Kind.UNLOCK) == 1
    # Another browser still needs it.
    assert "Your private gallery" in Client().get(scene.url).content.decode()


def test_changing_the_password_locks_out_every_session(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1, password=PASSWORD)
    client.post(f"{scene.url}unlock/", {"password": PASSWORD})
    previews = _preview_links(client.get(scene.url).content.decode())
    assert client.get(previews[0]).status_code == 200
    with tenant_context(a.studio):
        Gallery.objects.filter(pk=scene.gallery.pk).update(password_hash=make_password("a-new-one"))
    assert "Your private gallery" in client.get(scene.url).content.decode()
    assert client.get(previews[0]).status_code == 404  # the media links follow the session
    assert client.post(f"{scene.url}unlock/", {"password": PASSWORD}).status_code == 403
    assert client.post(f"{scene.url}unlock/", {"password": "a-new-one"}).status_code == 302
    assert client.get(previews[0]).status_code == 200


def test_wrong_passwords_are_throttled_per_gallery_and_ip(client: Client, two_tenants: Any, settings: Any) -> None:
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "10/15m"
    scene = make_scene(a, 1, password=PASSWORD)
    other = make_scene(a, 1, password=PASSWORD)
    for _ in range(9):
        assert client.post(f"{scene.url}unlock/", {"password": "guess"}).status_code == 403
    tenth = client.post(f"{scene.url}unlock/", {"password": "guess"})
    assert tenth.status_code == 429
    assert re.search(r"Too many attempts, try again in \d+ minutes?\.", tenth.content.decode())
    assert 0 < int(tenth["Retry-After"]) <= 900
    # Locked: even the right password is refused, from that IP, at that gallery.
    assert client.post(f"{scene.url}unlock/", {"password": PASSWORD}).status_code == 429
    assert client.post(f"{scene.url}unlock/", {"password": PASSWORD}, REMOTE_ADDR="10.9.8.7").status_code == 302
    assert client.post(f"{other.url}unlock/", {"password": PASSWORD}).status_code == 302


# --- The download PIN -----------------------------------------------------------------------------------------


def test_downloads_ask_for_the_pin_first(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 2, pin=PIN)
    portrait = scene.portraits[0]
    with tenant_context(a.studio):
        entitle(scene.gallery, portrait)
    html = client.get(scene.url).content.decode()
    assert f"{scene.url}pin/?next={portrait.pk}" in html  # the download button leads to the PIN
    response = client.post(scene.portrait_url(portrait, "download"), {"size": "full"})
    assert response.status_code == 302 and response["Location"] == f"{scene.url}pin/?next={portrait.pk}"
    assert client.post(f"{scene.url}download-all/").status_code == 302
    assert "Download PIN" in client.get(f"{scene.url}pin/?next={portrait.pk}").content.decode()

    wrong = client.post(f"{scene.url}pin/", {"pin": "0000", "next": str(portrait.pk)})
    assert wrong.status_code == 403 and "That PIN isn't right" in text(wrong)
    right = client.post(f"{scene.url}pin/", {"pin": PIN, "next": str(portrait.pk)})
    assert right.status_code == 302 and right["Location"] == f"{scene.url}#p-{portrait.pk}"
    download = client.post(scene.portrait_url(portrait, "download"), {"size": "full"})
    assert download.status_code == 303
    assert client.get(download["Location"]).status_code == 200
    # Changing the PIN asks for it again.
    with tenant_context(a.studio):
        Gallery.objects.filter(pk=scene.gallery.pk).update(pin_hash=make_password("9999"))
    assert client.get(download["Location"]).status_code == 404
    assert client.post(scene.portrait_url(portrait, "download"), {"size": "full"}).status_code == 302


def test_wrong_pins_are_throttled(client: Client, two_tenants: Any, settings: Any) -> None:
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "3/15m"
    scene = make_scene(a, 1, pin=PIN)
    assert client.post(f"{scene.url}pin/", {"pin": "1"}).status_code == 403
    assert client.post(f"{scene.url}pin/", {"pin": "2"}).status_code == 403
    locked = client.post(f"{scene.url}pin/", {"pin": "3"})
    assert locked.status_code == 429 and "Too many attempts" in locked.content.decode()
    assert client.post(f"{scene.url}pin/", {"pin": PIN}).status_code == 429


# --- CSRF -----------------------------------------------------------------------------------------------------


def test_every_public_post_needs_the_csrf_token(two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1, password=PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(scene.url)
    assert browser.post(f"{scene.url}unlock/", {"password": PASSWORD}).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert browser.post(f"{scene.url}unlock/", {"password": PASSWORD, "csrfmiddlewaretoken": token}).status_code == 302
    portrait = scene.portraits[0]
    for action in ("favorite", "more", "download"):
        assert browser.post(scene.portrait_url(portrait, action)).status_code == 403
    assert browser.post(f"{scene.url}download-all/").status_code == 403
    html = browser.get(scene.url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert "X-CSRFToken" in html  # htmx sends it as a header
    response = browser.post(scene.portrait_url(portrait, "favorite"), {"favorite": "1"}, headers={"X-CSRFToken": token})
    assert response.status_code == 302
    assert streamed(response) == b""
