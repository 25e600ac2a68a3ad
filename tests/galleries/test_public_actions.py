"""What the client does in the gallery: hearts (with htmx and without JavaScript), the favorites filter, the
single-portrait page (the viewer without JavaScript), events; and the gallery page's queries: a fixed, small
number whatever the number of portraits (1 or 200)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from galleries.models import GalleryEvent, GalleryPortrait, GalleryRequest
from jobs.models import Job
from tenants.context import tenant_context
from tests.conftest import expected_queries
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    _fresh_cache,
    entitle,
    make_client_double,
    make_gallery,
    make_portraits,
    make_scene,
    private_storage_fixture,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _entry(tenant: Any, gallery: Any, portrait: Any) -> GalleryPortrait:
    with tenant_context(tenant.studio):
        return GalleryPortrait.objects.get(gallery=gallery, portrait=portrait)


def test_hearts_with_htmx_and_without_javascript(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 3)
    first, second, _ = scene.portraits
    html = client.get(scene.url).content.decode()
    assert 'aria-label="Favorite portrait 1"' in html and 'aria-pressed="false"' in html

    # htmx: the button comes back pressed, with the same label.
    response = client.post(
        scene.portrait_url(first, "favorite"), {"favorite": "1", "n": "1"}, headers={"HX-Request": "true"}
    )
    fragment = response.content.decode()
    assert response.status_code == 200 and fragment.lstrip().startswith("<form")
    assert 'aria-pressed="true"' in fragment and 'aria-label="Favorite portrait 1"' in fragment
    assert 'name="favorite" value="0"' in fragment  # the next press takes it back
    entry = _entry(a, scene.gallery, first)
    assert entry.is_favorite and entry.favorited_at is not None
    # Pressing twice changes nothing (and counts no second event).
    client.post(scene.portrait_url(first, "favorite"), {"favorite": "1"}, headers={"HX-Request": "true"})

    # Without JavaScript: a form post and back to the portrait in the grid.
    response = client.post(scene.portrait_url(second, "favorite"), {"favorite": "1"})
    assert response.status_code == 302 and response["Location"] == f"{scene.url}#p-{second.pk}"
    response = client.post(scene.portrait_url(second, "favorite"), {"favorite": "0", "back": "portrait"})
    assert response["Location"] == scene.portrait_url(second)
    assert not _entry(a, scene.gallery, second).is_favorite
    with tenant_context(a.studio):
        kinds = list(
            GalleryEvent.objects.filter(gallery=scene.gallery).exclude(kind="view").values_list("kind", flat=True)
        )
    assert sorted(kinds) == ["favorite", "favorite", "unfavorite"]

    # The favorites filter.
    page = client.get(f"{scene.url}?show=favorites").content.decode()
    assert len(re.findall(r'class="g-tile[ "]', page)) == 1 and f'id="p-{first.pk}"' in page
    assert "1 favorite" in page
    assert client.get(scene.portrait_url(first, "favorite")).status_code == 405


def test_the_portrait_page_is_the_viewer_without_javascript(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 3)
    first, second, third = scene.portraits
    html = client.get(scene.url).content.decode()
    assert f'href="{scene.portrait_url(first)}" data-viewer-open' in html  # tiles are links
    assert 'role="dialog" aria-modal="true"' in html and "gallery.js" in html
    page = client.get(scene.portrait_url(second)).content.decode()
    assert "Portrait 2 of 3" in page
    assert f'rel="prev" href="{scene.portrait_url(first)}"' in page
    assert f'rel="next" href="{scene.portrait_url(third)}"' in page
    last = client.get(scene.portrait_url(third)).content.decode()
    assert 'rel="next"' not in last
    assert client.get(f"{scene.url}p/999999999/").status_code == 404


def test_more_like_me_refusals_are_clear(client: Client, two_tenants: Any) -> None:
    a, _ = two_tenants
    scene = make_scene(a, 1, allow_more_like_me=False)
    portrait = scene.portraits[0]
    assert "More like me" not in client.get(scene.url).content.decode()
    response = client.post(scene.portrait_url(portrait, "more"))
    assert response.status_code == 403 and "not available in this gallery" in text(response)
    # Allowed, but a recipe that can't go further (no engine recipe: a portrait with nothing to render again).
    open_scene = make_scene(a, 1)
    assert "More like me" not in client.get(open_scene.url).content.decode()
    htmx = client.post(open_scene.portrait_url(open_scene.portraits[0], "more"), headers={"HX-Request": "true"})
    assert htmx.status_code == 409 and 'id="gallery-requests"' in htmx.content.decode()
    assert "already as close to you" in text(htmx)
    with tenant_context(a.studio):
        assert not GalleryRequest.objects.exists() and not Job.objects.exists()


# --- Queries --------------------------------------------------------------------------------------------------


# The studio (tenant middleware), the request's savepoint, SET LOCAL of the tenant (row-level security), the
# session, the gallery, whether the studio can take payments (the cart), its "more like me" requests with their
# jobs, the gallery's order (its entries' ids, then which of their portraits are shown: single-table queries, no
# join the planner can get wrong), one page of entries, their portraits and doubles (by primary key), the page's
# active entitlements, the portraits with any (for "Download all"), the savepoint's release. Signed media links
# cost no query. The SET LOCAL runs on PostgreSQL only (see expected_queries).
GALLERY_PAGE_QUERIES = expected_queries(postgresql=15, sqlite=14)


def _big_scene(tenant: Any, count: int) -> str:
    """A password gallery of `count` portraits (every other one entitled, every third a favorite) and a
    pending request: everything the page shows."""
    with tenant_context(tenant.studio):
        double = make_client_double(tenant)
        portraits = make_portraits(tenant, double, count, files=False)
        gallery = make_gallery(double.client, portraits, password=PASSWORD)
        GalleryPortrait.objects.filter(gallery=gallery, position__in=range(0, count, 3)).update(is_favorite=True)
        for portrait in portraits[::2]:
            entitle(gallery, portrait, limit=3)
        job = Job.objects.create(kind="portraits.render", payload={})
        GalleryRequest.objects.create(gallery=gallery, source=portraits[0], job=job)
    return f"{tenant.prefix}/g/{gallery.token}/"


@pytest.mark.parametrize("count", [1, 200])
def test_the_gallery_page_takes_a_fixed_number_of_queries(
    client: Client, two_tenants: Any, django_assert_num_queries: Any, count: int, settings: Any
) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # payments configured: the cart asks whether the studio sells
    a, _ = two_tenants
    url = _big_scene(a, count)
    client.post(f"{url}unlock/", {"password": PASSWORD})
    client.get(url)  # the day's view event is recorded once
    with django_assert_num_queries(GALLERY_PAGE_QUERIES):
        response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    shown = min(count, 48)  # one page of tiles (GALLERY_PAGE_SIZE)
    assert len(re.findall(r'class="g-tile[ "]', html)) == shown
    assert html.count("g-download-form") == (shown + 1) // 2
    assert ">Download all<" in html
    assert "A new version is on its way" in html
