"""The studio's side of galleries at any size (issue 16): the gallery's page and the API's gallery come a page of
portraits at a time (the first page the same cost for 20 or 200), the API pages its portraits with next/previous
links; and the portrait cap (MAX_GALLERY_PORTRAITS) holds on every path that adds portraits: a new gallery, staff
adding (page and API), and a client's "more like me" (asked, and when its result arrives)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from galleries import client_services, services
from galleries.models import Gallery, GalleryPortrait, GalleryRequest
from generation import runs
from generation.models import Portrait
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.galleries.factories import use_private_storage
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    _fresh_cache,
    make_client_double,
    make_gallery,
    make_portraits,
    text,
)
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = pytest.mark.django_db

CAP = services.MAX_GALLERY_PORTRAITS


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    use_private_storage(settings, tmp_path / "private-media")


def _gallery(tenant: Tenant, count: int) -> tuple[Gallery, list[Portrait]]:
    with tenant_context(tenant.studio):
        double = make_client_double(tenant, name="Ada Client")
        portraits = make_portraits(tenant, double, count, files=False)
        return make_gallery(double.client, portraits), portraits


def _entry_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li class="gallery-tile" id="entry-(\d+)"', html)]


# --- The studio's page ----------------------------------------------------------------------------------------


def _studio_page(client: Client, url: str) -> tuple[bytes, int]:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content, len(queries)


def test_the_studio_page_shows_a_page_of_portraits_whatever_the_size(client_a: Client, tenant_a: Tenant) -> None:
    small, _ = _gallery(tenant_a, 20)
    large, portraits = _gallery(tenant_a, 200)
    small_body, small_queries = _studio_page(client_a, f"{tenant_a.prefix}/galleries/{small.pk}/")
    large_body, large_queries = _studio_page(client_a, f"{tenant_a.prefix}/galleries/{large.pk}/")
    assert small_queries == large_queries
    assert len(_entry_ids(small_body.decode())) == 20 and len(_entry_ids(large_body.decode())) == 48
    # Later pages: without JavaScript a full page with a link back; with htmx only the tiles (and the next link).
    html = large_body.decode()
    assert 'rel="next" href="?page=2#portraits"' in html and 'hx-get="?page=2"' in html
    page2 = client_a.get(f"{tenant_a.prefix}/galleries/{large.pk}/?page=2").content.decode()
    assert _entry_ids(page2) == [p.pk for p in portraits[48:96]] and 'rel="prev"' in page2
    fragment = client_a.get(f"{tenant_a.prefix}/galleries/{large.pk}/?page=5", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body
    assert _entry_ids(body) == [p.pk for p in portraits[192:]] and "data-next" not in body
    assert f'action="{tenant_a.prefix}/galleries/{large.pk}/portraits/{portraits[192].pk}/remove/"' in body


# --- The API --------------------------------------------------------------------------------------------------


def test_the_api_pages_a_gallerys_portraits(client_a: Client, tenant_a: Tenant, tenant_b: Tenant) -> None:
    gallery, portraits = _gallery(tenant_a, 230)
    base = f"http://testserver{tenant_a.prefix}/api/galleries/{gallery.pk}/portraits/"
    detail = client_a.get(f"{tenant_a.prefix}/api/galleries/{gallery.pk}/").json()
    assert [p["portrait_id"] for p in detail["portraits"]] == [p.pk for p in portraits[:100]]
    assert detail["portraits_next"] == f"{base}?page=2" and detail["portrait_count"] == 230
    page = client_a.get(detail["portraits_next"]).json()
    assert page["count"] == 230 and page["previous"] == f"{base}?page=1" and page["next"] == f"{base}?page=3"
    assert [p["portrait_id"] for p in page["results"]] == [p.pk for p in portraits[100:200]]
    last = client_a.get(page["next"]).json()
    assert [p["portrait_id"] for p in last["results"]] == [p.pk for p in portraits[200:]] and last["next"] is None
    assert set(last["results"][0]) == {
        "portrait_id",
        "position",
        "is_favorite",
        "favorited_at",
        "added_at",
        "thumbnail",
        "preview",
    }
    # A small gallery: every portrait in the detail, as before, and no next page.
    small, few = _gallery(tenant_a, 3)
    detail = client_a.get(f"{tenant_a.prefix}/api/galleries/{small.pk}/").json()
    assert len(detail["portraits"]) == 3 and detail["portraits_next"] is None
    # Another studio's gallery: 404.
    with tenant_context(tenant_b.studio):
        foreign, _ = _gallery(tenant_b, 1)
    assert client_a.get(f"{tenant_a.prefix}/api/galleries/{foreign.pk}/portraits/").status_code == 404


# --- The cap --------------------------------------------------------------------------------------------------


def test_the_cap_holds_when_staff_make_or_fill_a_gallery(client_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        double = make_client_double(tenant_a, name="Ada Client")
        portraits = make_portraits(tenant_a, double, CAP + 1, files=False)
        with pytest.raises(services.GalleryError, match=f"{CAP} portraits at most"):
            services.create_gallery(client=double.client, title="Too many", portraits=portraits, user=tenant_a.owner)
        gallery = services.create_gallery(
            client=double.client, title="Full", portraits=portraits[:CAP], user=tenant_a.owner
        )
        with pytest.raises(services.GalleryError, match=f"{CAP} portraits at most"):
            services.add_portraits(gallery=gallery, portraits=[portraits[CAP]])
    # The page and the API say so with a 400; nothing is added.
    page = client_a.post(f"{tenant_a.prefix}/galleries/{gallery.pk}/portraits/add/", {"portraits": [portraits[CAP].pk]})
    assert page.status_code == 400 and f"{CAP} portraits at most" in text(page)
    api = client_a.post(
        f"{tenant_a.prefix}/api/galleries/{gallery.pk}/portraits/",
        {"portraits": [portraits[CAP].pk]},
        content_type="application/json",
    )
    assert api.status_code == 400 and f"{CAP} portraits at most" in api.content.decode()
    with tenant_context(tenant_a.studio):
        assert GalleryPortrait.objects.filter(gallery=gallery).count() == CAP


@pytest.mark.usefixtures("run_settings")
def test_the_cap_holds_for_more_like_me(client: Client, two_tenants: Any, tiny_engine: dict[str, Any]) -> None:
    a, _ = two_tenants
    double = ready_double(a, tiny_engine, name="Ada Client")
    template, _ = make_template(a, "Window light")
    with tenant_context(a.studio):
        run = runs.start_run(double=double, items=[(template, 1)], user=a.owner)
    assert run_jobs(a, run) == ["succeeded"]
    with tenant_context(a.studio):
        source = Portrait.objects.get(run=run)
        filler = make_portraits(a, double, CAP, files=False)
        gallery = make_gallery(double.client, [source, *filler[: CAP - 1]])  # full
        jobs = Job.objects.count()
    url = f"{a.prefix}/g/{gallery.token}/"

    # Asked when the gallery is full: refused with a clear message, no job.
    refused = client.post(f"{url}p/{source.pk}/more/")
    assert refused.status_code == 409 and "This gallery is full" in text(refused)
    htmx = client.post(f"{url}p/{source.pk}/more/", headers={"HX-Request": "true"})
    assert htmx.status_code == 409 and "This gallery is full" in text(htmx)
    with tenant_context(a.studio):
        assert not GalleryRequest.objects.exists() and Job.objects.count() == jobs
        GalleryPortrait.objects.filter(gallery=gallery, portrait=filler[CAP - 2]).delete()  # room for one

    # Asked with room for one; staff fill the gallery before the job is done: the new portrait stays out.
    assert client.post(f"{url}p/{source.pk}/more/").status_code == 302
    with tenant_context(a.studio):
        request = GalleryRequest.objects.get(gallery=gallery)
        services.add_portraits(gallery=gallery, portraits=[filler[CAP - 1]])
    assert run_job(request.job_id, a.studio.pk) == "succeeded"
    page = text(client.get(url))
    assert "Your gallery is full" in page
    with tenant_context(a.studio):
        request.refresh_from_db()
        assert GalleryPortrait.objects.filter(gallery=gallery).count() == CAP
        assert request.fulfilled_at is not None and request.result_id is None  # closed, not tried again
    assert "Your gallery is full" not in text(client.get(url))  # said once


def test_insert_after_adds_nothing_to_a_full_gallery(two_tenants: Any) -> None:
    a, _ = two_tenants
    with tenant_context(a.studio):
        double = make_client_double(a)
        portraits = make_portraits(a, double, CAP + 1, files=False)
        gallery = make_gallery(double.client, portraits[:CAP])
        assert client_services._insert_after(gallery, portraits[0].pk, portraits[CAP]) is None
        assert GalleryPortrait.objects.filter(gallery=gallery).count() == CAP
        # An entry already there is found, full or not (idempotent).
        assert client_services._insert_after(gallery, portraits[0].pk, portraits[1]).portrait_id == portraits[1].pk
