"""Keyset (cursor) pages of the jobs list, its page and its API (jobs.keyset): every job exactly once, in the
list's order, forwards and back, with ties on created_at broken by id; no count; a bad cursor is the first page
on the page and a 404 on the API; another studio's jobs never appear, whatever the cursor."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs import keyset, selectors
from jobs.models import Job
from tenants.context import tenant_context
from tests.jobs.conftest import make_job

pytestmark = pytest.mark.django_db


def _jobs_with_ties(tenant: Any, n: int = 23) -> list[int]:
    """n jobs whose created_at repeat in runs of four (ties), and the ids in the list's order."""
    ids = [make_job(tenant).pk for _ in range(n)]
    start = timezone.now() - timedelta(days=1)
    with tenant_context(tenant.studio):
        for i, pk in enumerate(ids):
            Job.objects.filter(pk=pk).update(created_at=start + timedelta(seconds=i // 4))
        rows = Job.objects.order_by("-created_at", "-id").values_list("id", "created_at")
        expected = [pk for pk, _ in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]
    return expected


def test_pages_cover_every_job_once_in_order_with_ties_forwards_and_back(two_tenants):
    a, b = two_tenants
    expected = _jobs_with_ties(a)
    make_job(b)
    with tenant_context(a.studio):
        seen, pages, cursor = [], [], None
        while True:
            page = keyset.paginate(selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=cursor, page_size=5)
            pages.append(page)
            seen += [job.pk for job in page]
            if not page.has_next:
                break
            cursor = page.next_cursor
        assert seen == expected and len(pages) == 5 and [len(p) for p in pages] == [5, 5, 5, 5, 3]
        assert not pages[0].has_previous and all(p.has_previous for p in pages[1:])
        back, page = [], pages[-1]
        while page.has_previous:
            page = keyset.paginate(
                selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=page.previous_cursor, page_size=5
            )
            back = [job.pk for job in page] + back
        assert back == expected[:20]  # pages 4, 3, 2, 1 going back


def _page(cursor: str | None) -> keyset.KeysetPage[Job]:
    return keyset.paginate(selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=cursor, page_size=5)


def test_newer_jobs_arriving_are_reached_by_going_back(tenant_a):
    expected = _jobs_with_ties(tenant_a, 12)
    with tenant_context(tenant_a.studio):
        second = _page(_page(None).next_cursor)
        newer = make_job(tenant_a)  # arrives while someone reads page 2
        back = _page(second.previous_cursor)
        assert [j.pk for j in back] == expected[:5] and back.has_previous  # the five right before page 2
        first = _page(back.previous_cursor)
    assert [j.pk for j in first] == [newer.pk, *expected[:4]] and not first.has_previous and first.has_next


def test_going_back_to_the_start_gives_the_whole_first_page(tenant_a):
    expected = _jobs_with_ties(tenant_a, 12)
    with tenant_context(tenant_a.studio):
        second = _page(_page(None).next_cursor)
        Job.objects.filter(pk=expected[0]).delete()  # page 1 shrinks while someone reads page 2
        back = _page(second.previous_cursor)
    assert [j.pk for j in back] == expected[1:6] and not back.has_previous and back.has_next


def test_a_cursor_names_a_position_never_a_studio(two_tenants):
    """A cursor made from another studio's job only positions this studio's list."""
    a, b = two_tenants
    theirs = make_job(b)
    mine = make_job(a)
    cursor = keyset.encode_cursor([theirs.created_at + timedelta(seconds=1), theirs.pk + 1], before=False)
    with tenant_context(a.studio):
        page = keyset.paginate(selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=cursor, page_size=5)
    assert [j.pk for j in page] == [mine.pk]


@pytest.mark.parametrize("bad", ["zzz", "e30", "eyJwIjpbMSwyXSwiYiI6MH0", "eyJwIjpbbnVsbCwxXSwiYiI6MH0", "!!"])
def test_a_malformed_cursor_is_refused(tenant_a, bad):
    with tenant_context(tenant_a.studio), pytest.raises(keyset.InvalidCursor):
        keyset.paginate(selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=bad, page_size=5)


def test_an_ordering_without_the_primary_key_is_refused(tenant_a):
    with tenant_context(tenant_a.studio), pytest.raises(ValueError, match="primary key"):
        keyset.paginate(selectors.job_list(), ordering=("-created_at",), cursor=None, page_size=5)


def test_the_page_walks_every_job_by_its_no_js_links(client_a, tenant_a):
    expected = _jobs_with_ties(tenant_a, 60)
    url, seen, pages = f"{tenant_a.prefix}/jobs/", [], 0
    while url:
        html = client_a.get(url).content.decode()
        pages += 1
        seen += [int(pk) for pk in re.findall(r'<a href="/s/studio-a/jobs/(\d+)/">#', html)]
        older = re.search(r'<a class="btn btn-small" href="(\?cursor=[^"]+)" rel="next">Older</a>', html)
        url = f"{tenant_a.prefix}/jobs/{older.group(1)}" if older else None
        assert "Page " not in html and " of " not in html.split('aria-label="Pages"')[-1][:400]  # no count
    assert seen == expected and pages == 3
    newer = re.search(r'href="(\?cursor=[^"]+)" rel="prev">Newer</a>', html)
    assert newer and 'href="?">Newest</a>' in html
    html = client_a.get(f"{tenant_a.prefix}/jobs/{newer.group(1)}").content.decode()
    assert [int(pk) for pk in re.findall(r'<a href="/s/studio-a/jobs/(\d+)/">#', html)] == expected[25:50]


def test_the_api_walks_every_job_by_next_links_without_a_count(client_a, two_tenants):
    a, b = two_tenants
    expected = _jobs_with_ties(a, 23)
    make_job(b)
    url, seen = f"{a.prefix}/api/jobs/?limit=10", []
    while url:
        data = client_a.get(url).json()
        assert set(data) == {"next", "previous", "results"}
        seen += [row["id"] for row in data["results"]]
        url = data["next"]
    assert seen == expected
    assert data["previous"] and "limit=10" in data["previous"]
    back = client_a.get(data["previous"]).json()
    assert [row["id"] for row in back["results"]] == expected[10:20]


def test_the_api_refuses_a_malformed_cursor_and_caps_the_limit(client_a, tenant_a):
    make_job(tenant_a)
    response = client_a.get(f"{tenant_a.prefix}/api/jobs/?cursor=zzz")
    assert response.status_code == 404 and response.json()["error"]["message"] == "Invalid cursor."
    assert len(client_a.get(f"{tenant_a.prefix}/api/jobs/?limit=100000").json()["results"]) == 1
    assert client_a.get(f"{tenant_a.prefix}/api/jobs/?limit=x").status_code == 200
