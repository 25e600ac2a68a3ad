"""The galleries' part of the dashboard (galleries/dashboard.py): runs finished whose picks are in no gallery,
favorites not bought, galleries shared and never opened; galleries shared and opened as recent activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from clients.models import Client
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait
from generation.models import Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from tenants.context import tenant_context
from tests.galleries.factories import studio_double
from tests.tenants.dashboard_data import action_items, activity, dashboard_page

pytestmark = pytest.mark.django_db

RUNS = "galleries.runs_without_gallery"
FAVORITES = "galleries.favorites_not_bought"
UNOPENED = "galleries.never_opened"


def _run(tenant: Any, *, state: str = Job.State.SUCCEEDED, pick: bool = True, hidden: bool = False) -> RenderRun:
    """A client run of a new client ("Anna Martin") with one item and one portrait."""
    double = studio_double(tenant, client=Client.objects.create(name="Anna Martin"))
    run = RenderRun.objects.create(double=double, images=1)
    RenderRunItem.objects.create(run=run, images=1, job=Job.objects.create(kind="portraits.render", state=state))
    Portrait.objects.create(double=double, run=run, is_pick=pick, is_hidden=hidden, rank=1)
    return run


def _gallery(tenant: Any, *, shared_days: float | None = 3, **fields: Any) -> Gallery:
    run = _run(tenant)
    shared = timezone.now() - timedelta(days=shared_days) if shared_days is not None else None
    gallery = Gallery.objects.create(client=run.double.client, title="Summer", run=run, shared_at=shared, **fields)
    GalleryPortrait.objects.create(gallery=gallery, portrait=run.portraits.get())
    return gallery


# --- Runs without a gallery -----------------------------------------------------------------------------------


def test_a_finished_run_with_picks_and_no_gallery_needs_one(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        run = _run(tenant_a)
    item = action_items(dashboard_page(client_a, tenant_a))[RUNS]
    url = f"{tenant_a.prefix}/galleries/from-run/{run.pk}/"
    assert "1 run has finished and its picks are in no gallery yet." in item
    assert f'<a href="{url}">Anna Martin</a>' in item
    assert f'href="{url}">Make the gallery</a>' in item


def _in_a_gallery(tenant: Any) -> None:
    run = _run(tenant)
    gallery = Gallery.objects.create(client=run.double.client, title="Later")
    GalleryPortrait.objects.create(gallery=gallery, portrait=run.portraits.get())


def _old(tenant: Any) -> None:
    RenderRun.objects.filter(pk=_run(tenant).pk).update(created_at=timezone.now() - timedelta(days=91))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: Gallery.objects.create(client=(r := _run(t)).double.client, run=r), id="made from it"),
        pytest.param(_in_a_gallery, id="its pick in a gallery"),
        pytest.param(lambda t: _run(t, state=Job.State.RUNNING), id="still running"),
        pytest.param(lambda t: _run(t, state=Job.State.FAILED), id="failed"),
        pytest.param(lambda t: _run(t, pick=False), id="no pick"),
        pytest.param(lambda t: _run(t, hidden=True), id="its pick hidden"),
        pytest.param(
            lambda t: RenderRun.objects.filter(pk=_run(t).pk).update(kind=RenderRun.Kind.PREVIEW), id="a preview"
        ),
        pytest.param(_old, id="older than 90 days"),
    ],
)
def test_a_run_that_needs_no_gallery_is_not_listed(client_a, tenant_a, make) -> None:
    with tenant_context(tenant_a.studio):
        make(tenant_a)
    assert RUNS not in action_items(dashboard_page(client_a, tenant_a))


# --- Galleries never opened -----------------------------------------------------------------------------------


def test_a_gallery_shared_days_ago_and_never_opened_needs_a_reminder(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        gallery = _gallery(tenant_a)
        # Staff opened it before sending it: that is not the client.
        GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.VIEW)
        GalleryEvent.objects.filter(gallery=gallery).update(created_at=timezone.now() - timedelta(days=4))
    item = action_items(dashboard_page(client_a, tenant_a))[UNOPENED]
    url = f"{tenant_a.prefix}/galleries/{gallery.pk}/"
    assert "1 gallery was shared but never opened." in item
    assert f'<a href="{url}">Anna Martin: Summer</a> <span class="muted">· shared 3\xa0days ago</span>' in item
    assert f'href="{url}">Remind the client</a>' in item


def _viewed(tenant: Any) -> None:
    GalleryEvent.objects.create(gallery=_gallery(tenant), kind=GalleryEvent.Kind.VIEW)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_viewed, id="opened"),
        pytest.param(lambda t: _gallery(t, shared_days=0.1), id="shared hours ago"),
        pytest.param(lambda t: _gallery(t, shared_days=None), id="never shared"),
        pytest.param(lambda t: _gallery(t, revoked_at=timezone.now()), id="revoked"),
        pytest.param(lambda t: _gallery(t, expires_at=timezone.now() - timedelta(hours=1)), id="expired"),
    ],
)
def test_a_gallery_that_needs_no_reminder_is_not_listed(client_a, tenant_a, make) -> None:
    with tenant_context(tenant_a.studio):
        make(tenant_a)
    assert UNOPENED not in action_items(dashboard_page(client_a, tenant_a))


# --- Favorites not bought -------------------------------------------------------------------------------------


def _favorite(tenant: Any, **gallery_fields: Any) -> tuple[Gallery, GalleryPortrait]:
    gallery = _gallery(tenant, **gallery_fields)
    GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.VIEW)
    entry = gallery.entries.get()
    entry.is_favorite, entry.favorited_at = True, timezone.now()
    entry.save()
    return gallery, entry


def test_a_favorite_not_bought_is_listed_with_its_gallery(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        gallery, entry = _favorite(tenant_a)
        # A revoked entitlement (a refund) is not a purchase.
        Entitlement.objects.create(gallery=gallery, portrait=entry.portrait, revoked_at=timezone.now())
    item = action_items(dashboard_page(client_a, tenant_a))[FAVORITES]
    url = f"{tenant_a.prefix}/galleries/{gallery.pk}/"
    assert "1 favorite in 1 gallery isn&#x27;t bought yet." in item
    assert f'<a href="{url}">Anna Martin: Summer</a> <span class="muted">· 1 favorite</span>' in item
    assert f'href="{url}">Open the gallery</a>' in item


def test_a_bought_favorite_or_one_in_a_closed_gallery_is_not_listed(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        gallery, entry = _favorite(tenant_a)
        Entitlement.objects.create(gallery=gallery, portrait=entry.portrait, size=Entitlement.Size.WEB)
        _favorite(tenant_a, revoked_at=timezone.now())
    assert FAVORITES not in action_items(dashboard_page(client_a, tenant_a))


# --- Activity -------------------------------------------------------------------------------------------------


def test_galleries_shared_and_opened_are_recent_activity(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.studio):
        gallery = _gallery(tenant_a, shared_days=1)
        for _ in range(3):  # opened again and again: one entry
            GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.VIEW)
    entries = activity(dashboard_page(client_a, tenant_a))
    url = f"{tenant_a.prefix}/galleries/{gallery.pk}/"
    assert f'<a href="{url}">Anna Martin opened the gallery “Summer”</a>' in entries[0]
    assert sum("opened the gallery" in entry for entry in entries) == 1
    assert any(f'<a href="{url}">Gallery “Summer” sent to Anna Martin</a>' in entry for entry in entries)
