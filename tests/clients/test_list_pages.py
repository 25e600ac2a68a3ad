"""The clients list by cursor (issue 16): the page's no-JS Next and Previous links walk every client once, in name
order with ties on the name broken by id, keeping the search; the API's `next` links do the same without a count;
photo-set counts are right on every page; a bad cursor is the first page (page) or a 404 (API)."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

from clients import services
from clients.models import Client
from tenants.context import tenant_context
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr id="client-(\d+)">')


def _clients(tenant: Tenant, n: int) -> list[int]:
    """n clients, names repeating in threes (ties), a photo set for every third; their ids in the list's order."""
    with tenant_context(tenant.studio):
        for i in range(n):
            client = services.create_client(
                name=f"Client {i // 3:03d}", email=f"c{i}@example.com", created_by=tenant.owner
            )
            if i % 3 == 0:
                services.create_photo_set(client=client, created_by=None)
        return list(Client.objects.order_by("name", "id").values_list("id", flat=True))


def _walk(client: Any, url: str, rel: str) -> tuple[list[int], list[str]]:
    seen, pages = [], []
    while url:
        body = client.get(url).content.decode()
        pages.append(body)
        seen += [int(pk) for pk in ROW.findall(body)]
        link = re.search(rf'href="(\?[^"]+)" rel="{rel}"', body)
        url = f"{url.split('?')[0]}{html_lib.unescape(link.group(1))}" if link else None
    return seen, pages


def test_the_page_walks_every_client_once_by_its_no_js_links_and_back(client_a, two_tenants):
    a, b = two_tenants
    expected = _clients(a, 57)
    _clients(b, 4)
    seen, pages = _walk(client_a, f"{a.prefix}/clients/", "next")
    assert seen == expected and len(pages) == 3
    assert all("Page " not in page for page in pages)  # no count, no page numbers
    last = re.search(r'href="(\?[^"]+)" rel="prev"', pages[-1])
    back, _ = _walk(client_a, f"{a.prefix}/clients/{html_lib.unescape(last.group(1))}", "prev")
    assert back == expected[25:50] + expected[:25]


def test_the_search_is_kept_across_pages(client_a, tenant_a):
    expected = _clients(tenant_a, 40)
    with tenant_context(tenant_a.studio):
        services.create_client(name="Zed Other", email="zed@elsewhere.example", created_by=None)
        matching = list(
            Client.objects.filter(email__icontains="@EXAMPLE.COM").order_by("name", "id").values_list("id", flat=True)
        )
    seen, pages = _walk(client_a, f"{tenant_a.prefix}/clients/?q=%40EXAMPLE.COM", "next")
    assert seen == matching == expected and len(pages) == 2
    assert 'href="?q=%40EXAMPLE.COM&amp;cursor=' in pages[0]


def test_photo_set_counts_are_right_on_a_later_page(client_a, tenant_a):
    _clients(tenant_a, 30)
    _, pages = _walk(client_a, f"{tenant_a.prefix}/clients/", "next")
    counts = [int(n) for page in pages for n in re.findall(r'<td data-label="Photo sets">(\d+)</td>', page)]
    assert counts == [1, 0, 0] * 10


def test_a_bad_cursor_is_the_first_page(client_a, tenant_a):
    expected = _clients(tenant_a, 3)
    body = client_a.get(f"{tenant_a.prefix}/clients/?cursor=not-a-cursor").content.decode()
    assert [int(pk) for pk in ROW.findall(body)] == expected


def test_the_api_walks_every_client_by_next_links_without_a_count(client_a, two_tenants):
    a, b = two_tenants
    expected = _clients(a, 23)
    _clients(b, 3)
    url, seen, counts = f"{a.prefix}/api/clients/?limit=10", [], []
    while url:
        data = client_a.get(url).json()
        assert set(data) == {"next", "previous", "results"}
        seen += [row["id"] for row in data["results"]]
        url = data["next"]
        counts += [row["photo_set_count"] for row in data["results"]]
    assert seen == expected and counts == ([1, 0, 0] * 8)[:23]
    assert client_a.get(f"{a.prefix}/api/clients/?cursor=zzz").status_code == 404
