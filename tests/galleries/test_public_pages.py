"""Galleries that open at the same cost at any size (issue 16): the client's gallery comes a page at a time
(GALLERY_PAGE_SIZE tiles), later pages with htmx (only the tiles, appended) or without JavaScript ("Next page"
links); hearts, the favorites filter and the viewer's previous / next work across the page boundaries; the first
page's bytes and queries don't grow with the gallery."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from galleries.models import GalleryPortrait
from tenants.context import tenant_context
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    _fresh_cache,
    entitle,
    make_client_double,
    make_gallery,
    make_portraits,
    private_storage_fixture,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

TILE_RE = re.compile(r'<li class="g-tile[^"]*" id="p-(\d+)"')


def _tile_ids(html: str) -> list[int]:
    return [int(pk) for pk in TILE_RE.findall(html)]


def _gallery(tenant: Any, count: int, **fields: Any) -> tuple[str, Any, list]:
    """A gallery of `count` portraits without files (a third of them entitled): its link, itself, its portraits."""
    with tenant_context(tenant.studio):
        double = make_client_double(tenant, name="Ada Client")
        portraits = make_portraits(tenant, double, count, files=False)
        gallery = make_gallery(double.client, portraits, **fields)
        for portrait in portraits[::3]:
            entitle(gallery, portrait, limit=3)
    return f"{tenant.prefix}/g/{gallery.token}/", gallery, portraits


def _next_link(html: str) -> str | None:
    found = re.search(r'<a class="g-btn" rel="next" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _first_page(client: Client, url: str) -> tuple[bytes, int]:
    client.get(url)  # the day's view event is recorded on the first visit
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content, len(queries)


@pytest.mark.parametrize(("small", "large", "page_size"), [(20, 200, 12), (60, 2000, 48)])
def test_the_first_page_does_not_grow_with_the_gallery(
    client: Client, two_tenants: Any, settings: Any, small: int, large: int, page_size: int
) -> None:
    settings.GALLERY_PAGE_SIZE = page_size
    a, _ = two_tenants
    small_url, _, _ = _gallery(a, small)
    large_url, _, _ = _gallery(a, large)
    small_body, small_queries = _first_page(client, small_url)
    large_body, large_queries = _first_page(client, large_url)
    assert len(_tile_ids(small_body.decode())) == len(_tile_ids(large_body.decode())) == page_size
    assert small_queries == large_queries
    # The same bytes but for the numbers that name the gallery's size and the portraits' ids (a few digits).
    assert abs(len(large_body) - len(small_body)) <= 0.01 * len(small_body), (len(small_body), len(large_body))
    assert f"{large} portraits" in text_of(large_body)


def text_of(body: bytes) -> str:
    import html

    return html.unescape(body.decode())


def test_every_page_is_reachable_without_javascript_and_with_htmx(
    client: Client, two_tenants: Any, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    a, _ = two_tenants
    url, _, portraits = _gallery(a, 10)
    seen: list[int] = []
    page_url: str | None = url
    pages = 0
    while page_url:
        html = client.get(page_url).content.decode()
        pages += 1
        seen += _tile_ids(html)
        if pages > 1:
            assert 'rel="prev"' in html and "Previous page" in html  # and back
        page_url = _next_link(html)
    assert pages == 3 and seen == [p.pk for p in portraits]  # each once, in order

    # htmx: the same link gives only the next tiles and the next link, to append at the end of the grid.
    first = client.get(url).content.decode()
    fragment = client.get(_next_link(first), headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and "g-intro" not in body
    assert _tile_ids(body) == [p.pk for p in portraits[4:8]]
    assert 'hx-trigger="revealed, g-more"' in body and "?page=3" in body
    assert 'data-n="5"' in body  # numbered in the whole gallery
    last = client.get(f"{url}?page=3", headers={"HX-Request": "true"}).content.decode()
    assert _tile_ids(last) == [p.pk for p in portraits[8:]] and "data-next" not in last
    # Past the last page: the last page; nonsense: the first.
    assert _tile_ids(client.get(f"{url}?page=99").content.decode()) == [p.pk for p in portraits[8:]]
    assert _tile_ids(client.get(f"{url}?page=x").content.decode()) == [p.pk for p in portraits[:4]]


def test_a_locked_gallery_gives_no_page_to_htmx(client: Client, two_tenants: Any, settings: Any) -> None:
    from tests.galleries.test_public_support import PASSWORD

    settings.GALLERY_PAGE_SIZE = 2
    a, _ = two_tenants
    url, _, _ = _gallery(a, 5, password=PASSWORD)
    response = client.get(f"{url}?page=2", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Refresh"] == "true" and not _tile_ids(response.content.decode())
    assert not _tile_ids(client.get(f"{url}?page=2").content.decode())  # the password page


def test_hearts_and_the_favorites_filter_across_pages(client: Client, two_tenants: Any, settings: Any) -> None:
    settings.GALLERY_PAGE_SIZE = 3
    a, _ = two_tenants
    url, gallery, portraits = _gallery(a, 8)
    late = portraits[6]  # on page 3
    response = client.post(f"{url}p/{late.pk}/favorite/", {"favorite": "1"})
    assert response.status_code == 302 and response["Location"] == f"{url}?page=3#p-{late.pk}"  # back to its tile
    early = portraits[1]
    response = client.post(f"{url}p/{early.pk}/favorite/", {"favorite": "1"})
    assert response["Location"] == f"{url}#p-{early.pk}"
    with tenant_context(a.studio):
        assert set(
            GalleryPortrait.objects.filter(gallery=gallery, is_favorite=True).values_list("portrait_id", flat=True)
        ) == {late.pk, early.pk}
    page = text(client.get(url))
    assert "8 portraits</span> · 2 favorites" in page
    favorites = client.get(f"{url}?show=favorites").content.decode()
    assert _tile_ids(favorites) == [early.pk, late.pk]
    # htmx hearts on a later page work as on the first.
    response = client.post(f"{url}p/{portraits[7].pk}/favorite/", {"favorite": "1", "n": "8"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'aria-label="Favorite portrait 8"' in response.content.decode()
    # The favorites filter pages too, its links keep the filter.
    settings.GALLERY_PAGE_SIZE = 2
    favorites = client.get(f"{url}?show=favorites").content.decode()
    assert _tile_ids(favorites) == [early.pk, late.pk] and _next_link(favorites) == f"{url}?show=favorites&page=2"
    assert _tile_ids(client.get(_next_link(favorites)).content.decode()) == [portraits[7].pk]


def test_the_viewer_goes_on_across_the_page_boundary(client: Client, two_tenants: Any, settings: Any) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    a, _ = two_tenants
    url, _, portraits = _gallery(a, 9)
    last_of_first, first_of_second = portraits[3], portraits[4]
    # The grid tells the viewer the gallery's size, and on page 2 where the portrait before it is.
    first = client.get(url).content.decode()
    assert 'data-total="9"' in first and "data-before-url" not in first
    second = client.get(f"{url}?page=2").content.decode()
    assert f'data-before-url="{url}p/{last_of_first.pk}/"' in second
    # The viewer without JavaScript (a portrait's own page): previous and next cross the boundary both ways.
    page = client.get(f"{url}p/{last_of_first.pk}/").content.decode()
    assert f'rel="next" href="{url}p/{first_of_second.pk}/"' in page and "Portrait 4 of 9" in page
    page = client.get(f"{url}p/{first_of_second.pk}/").content.decode()
    assert f'rel="prev" href="{url}p/{last_of_first.pk}/"' in page and "Portrait 5 of 9" in page
    assert f'href="{url}?page=2#p-{first_of_second.pk}">All portraits' in page  # back to its page of the grid
