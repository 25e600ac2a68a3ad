""" "More like me" from the gallery, with the real engine (tiny model on the CPU, 2 steps, 64 px): the client asks,
a render job and a GalleryRequest are made, the page polls, the job runs (here, through the job runner), and the
new portrait joins the gallery right after its source; a failed job says so without internals."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from galleries.models import GalleryEvent, GalleryPortrait, GalleryRequest
from generation import runs
from generation.models import Portrait
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.galleries.test_public_support import _fresh_cache, make_gallery, text  # noqa: F401  (fixtures)
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


def _tile_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li class="g-tile[^"]*" id="p-(\d+)"', html)]


def test_more_like_me_makes_a_new_portrait_that_joins_the_gallery_after_its_source(
    client: Client, two_tenants: Any, tiny_engine: dict[str, Any]
) -> None:
    a, _ = two_tenants
    studio = a.studio
    double = ready_double(a, tiny_engine, name="Ada Client")
    template, _ = make_template(a, "Window light")
    with tenant_context(studio):
        run = runs.start_run(double=double, items=[(template, 2)], user=a.owner)
    assert run_jobs(a, run) == ["succeeded"]
    with tenant_context(studio):
        first, second = Portrait.objects.filter(run=run).order_by("rank", "pk")
        gallery = make_gallery(double.client, [first, second])
    url = f"{a.prefix}/g/{gallery.token}/"

    page = client.get(url).content.decode()
    assert _tile_ids(page) == [first.pk, second.pk]
    assert page.count("More like me") >= 2 and "hx-trigger" not in page  # nothing pending: no polling

    # The client asks (htmx): the notice says it is on its way, and polls.
    response = client.post(f"{url}p/{first.pk}/more/", headers={"HX-Request": "true"})
    notice = response.content.decode()
    assert response.status_code == 200
    assert "A new version is on its way." in notice and 'hx-trigger="every 3s"' in notice
    with tenant_context(studio):
        request = GalleryRequest.objects.select_related("job").get(gallery=gallery)
        assert request.source_id == first.pk and request.job.kind == "portraits.render"
        assert request.job.payload["more_like_me_of"] == first.pk and request.job.state == Job.State.QUEUED
        assert request.job.created_by_id is None  # the client has no account
        assert GalleryEvent.objects.filter(kind=GalleryEvent.Kind.MORE_LIKE_ME, portrait=first).count() == 1
    # Twice for the same portrait: refused while the first is on its way.
    again = client.post(f"{url}p/{first.pk}/more/", headers={"HX-Request": "true"})
    assert again.status_code == 409 and "already on its way" in text(again)
    # Without JavaScript: the page itself says so and refreshes.
    page = client.get(url).content.decode()
    assert "A new version is on its way." in page and 'http-equiv="refresh"' in page
    with tenant_context(studio):
        after = max(GalleryPortrait.objects.filter(gallery=gallery).values_list("pk", flat=True))
    poll = client.get(f"{url}updates/?after={after}")
    assert (
        poll.status_code == 200 and "on its way" in poll.content.decode() and "hx-swap-oob" not in poll.content.decode()
    )

    # The gpu worker runs the job.
    assert run_job(request.job_id, studio.pk) == "succeeded"
    poll = client.get(f"{url}updates/?after={after}").content.decode()
    with tenant_context(studio):
        child = Portrait.objects.get(parent=first, job_id=request.job_id)
        request.refresh_from_db()
        order = list(
            GalleryPortrait.objects.filter(gallery=gallery).order_by("position").values_list("portrait_id", flat=True)
        )
    assert request.result_id == child.pk and request.fulfilled_at is not None
    assert order == [first.pk, child.pk, second.pk]  # right after its source
    assert "Your new portrait is here." in poll and "hx-trigger" not in poll  # polling stops
    assert f'hx-swap-oob="afterend:#p-{first.pk}"' in poll and f'id="p-{child.pk}"' in poll
    assert child.identity_weight > first.identity_weight and child.seed == first.seed
    # The page shows it in its place, as a watermarked preview like the others.
    page = client.get(url).content.decode()
    assert _tile_ids(page) == [first.pk, child.pk, second.pk]
    preview_link = re.search(rf'id="p-{child.pk}".*?<img src="([^"]+)"', page, re.S).group(1)
    with tenant_context(studio):
        child.preview.open("rb")
        stored = child.preview.read()
        child.preview.close()
    assert b"".join(client.get(preview_link).streaming_content) == stored
    # Polling again adds nothing twice.
    with tenant_context(studio):
        assert GalleryPortrait.objects.filter(gallery=gallery, portrait=child).count() == 1


def test_a_failed_job_tells_the_client_without_internals(
    client: Client, two_tenants: Any, tiny_engine: dict[str, Any]
) -> None:
    a, _ = two_tenants
    double = ready_double(a, tiny_engine, name="Ada Client")
    template, _ = make_template(a, "Window light")
    with tenant_context(a.studio):
        run = runs.start_run(double=double, items=[(template, 1)], user=a.owner)
    run_jobs(a, run)
    with tenant_context(a.studio):
        portrait = Portrait.objects.get(run=run)
        gallery = make_gallery(double.client, [portrait])
    url = f"{a.prefix}/g/{gallery.token}/"
    client.post(f"{url}p/{portrait.pk}/more/")
    with tenant_context(a.studio):
        request = GalleryRequest.objects.get(gallery=gallery)
        Job.objects.filter(pk=request.job_id).update(state=Job.State.FAILED, error="CUDA out of memory on gpu-3")
    page = text(client.get(url))
    assert "We couldn't make it this time." in page and "CUDA" not in page and "gpu-3" not in page
    assert "on its way" not in page
    with tenant_context(a.studio):
        assert GalleryPortrait.objects.filter(gallery=gallery).count() == 1
    # The client may try again.
    assert client.post(f"{url}p/{portrait.pk}/more/").status_code == 302


def test_at_most_a_few_requests_on_their_way(
    client: Client, two_tenants: Any, tiny_engine: dict[str, Any], settings: Any
) -> None:
    settings.GALLERY_MAX_PENDING_REQUESTS = 1
    a, _ = two_tenants
    double = ready_double(a, tiny_engine, name="Ada Client")
    template, _ = make_template(a, "Window light")
    with tenant_context(a.studio):
        run = runs.start_run(double=double, items=[(template, 2)], user=a.owner)
    run_jobs(a, run)
    with tenant_context(a.studio):
        first, second = Portrait.objects.filter(run=run).order_by("pk")
        gallery = make_gallery(double.client, [first, second])
    url = f"{a.prefix}/g/{gallery.token}/"
    assert client.post(f"{url}p/{first.pk}/more/").status_code == 302
    refused = client.post(f"{url}p/{second.pk}/more/")
    assert refused.status_code == 429 and "wait for them" in text(refused)
