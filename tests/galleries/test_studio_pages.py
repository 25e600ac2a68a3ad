"""The studio's gallery pages (galleries/views.py): the list and its query count, a new gallery for a client or
from a run's picks, a gallery's page and its actions, the settings page; roles (photographers look, a 403 with a
message on actions) and another studio's objects (404 everywhere)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from galleries import services
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait, GallerySettings
from generation.models import Portrait
from tenants.context import tenant_context
from tenants.models import Role
from tests.clients.factories import make_client
from tests.conftest import Tenant, add_member, expected_queries
from tests.galleries.factories import run_with_portraits, studio_double, use_private_storage

pytestmark = pytest.mark.django_db

# The tenant middleware (the setting's reset, the studio, the request's savepoint, its SET LOCAL, the release),
# the session, the user and their membership; then the page itself: the count (paginator) and the rows with their
# clients and portrait and favorite counts in one query. The reset and the SET LOCAL run on PostgreSQL only (see
# expected_queries).
LIST_QUERIES = expected_queries(postgresql=10, sqlite=8)


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    use_private_storage(settings, tmp_path / "private-media")


def setup(tenant: Tenant, picks: int = 2, others: int = 1) -> tuple[Any, Any]:
    """A client with a double and a run; returns (client, run)."""
    with tenant_context(tenant.studio):
        client = make_client(tenant)
        double = studio_double(tenant, client=client)
        return client, run_with_portraits(tenant, double=double, picks=picks, others=others)


def gallery_of(tenant: Tenant, picks: int = 2, others: int = 1, **kwargs: Any) -> Gallery:
    client, run = setup(tenant, picks, others)
    with tenant_context(tenant.studio):
        return services.create_gallery(client=client, run=run, **kwargs)


def url(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/galleries/{path}"


def signed_in_as(client: Any, tenant: Tenant, role: str) -> Any:
    client.force_login(add_member(tenant, f"{role}@{tenant.studio.slug}.example", role))
    return client


# --- The list -------------------------------------------------------------------------------------------------


def test_the_list_shows_each_gallery_with_its_counts_and_status(client_a: Any, tenant_a: Tenant):
    shared = gallery_of(tenant_a, title="Shared one")
    draft = gallery_of(tenant_a, title="Draft one", never_expires=True)
    revoked = gallery_of(tenant_a, title="Revoked one")
    expired = gallery_of(tenant_a, title="Expired one")
    with tenant_context(tenant_a.studio):
        Gallery.objects.filter(pk=shared.pk).update(shared_at=timezone.now())
        services.revoke(gallery=revoked)
        Gallery.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
        GalleryPortrait.objects.filter(gallery=shared).update(is_favorite=True)
    response = client_a.get(url(tenant_a))
    assert response.status_code == 200
    page = response.content.decode()
    statuses = {g.pk: s for g, s in [(shared, "shared"), (draft, "draft"), (revoked, "revoked"), (expired, "expired")]}
    for pk, status in statuses.items():
        assert f'<tr id="gallery-{pk}" data-status="{status}">' in page
    row = page.split(f'id="gallery-{shared.pk}"')[1].split("</tr>")[0]
    assert '<td data-label="Portraits" class="gallery-portraits">2</td>' in row
    assert '<td data-label="Favorites" class="gallery-favorites">2</td>' in row
    assert "No expiry" in page.split(f'id="gallery-{draft.pk}"')[1].split("</tr>")[0]


def test_the_list_says_which_galleries_are_locked(client_a: Any, tenant_a: Tenant):
    """Issue 13, finding 5: a gallery locked after too many wrong passwords or PINs is marked in the list too (the
    studio sees it without opening each gallery)."""
    locked = gallery_of(tenant_a, title="Locked one")
    open_one = gallery_of(tenant_a, title="Open one")
    with tenant_context(tenant_a.studio):
        Gallery.objects.filter(pk=locked.pk).update(secret_locked_at=timezone.now())
    page = client_a.get(url(tenant_a)).content.decode()
    assert "gallery-locked" in page.split(f'id="gallery-{locked.pk}"')[1].split("</tr>")[0]
    assert "gallery-locked" not in page.split(f'id="gallery-{open_one.pk}"')[1].split("</tr>")[0]


@pytest.mark.parametrize("count", [1, 6])
def test_the_list_costs_a_fixed_number_of_queries(client_a: Any, tenant_a: Tenant, count: int):
    client, run = setup(tenant_a)
    with tenant_context(tenant_a.studio):
        for i in range(count):
            services.create_gallery(client=client, run=run, title=f"Gallery {i}")
    client_a.get(url(tenant_a))  # warm: the session, the studio settings rows
    with CaptureQueriesContext(connection) as queries:
        response = client_a.get(url(tenant_a))
    assert response.status_code == 200
    assert response.content.decode().count('<tr id="gallery-') == count
    assert len(queries) == LIST_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)


# --- New galleries --------------------------------------------------------------------------------------------


def test_new_gallery_page_preselects_the_picks_and_creates_the_gallery(client_a: Any, tenant_a: Tenant):
    client, run = setup(tenant_a, picks=2, others=2)
    with tenant_context(tenant_a.studio):
        portraits = list(Portrait.objects.filter(run=run).order_by("rank"))
        hidden = portraits[-1]
        Portrait.objects.filter(pk=hidden.pk).update(is_hidden=True, is_pick=False)
    response = client_a.get(url(tenant_a, f"new/{client.pk}/"))
    assert response.status_code == 200
    page = response.content.decode()
    for p in portraits[:2]:
        assert f'name="portraits" value="{p.pk}" checked' in page
    assert f'name="portraits" value="{portraits[2].pk}">' in page
    assert f'value="{hidden.pk}"' not in page  # hidden portraits are not offered
    assert "/media/" in page  # thumbnails through signed links

    chosen = [portraits[0].pk, portraits[2].pk]
    response = client_a.post(
        url(tenant_a, f"new/{client.pk}/"),
        {"title": "Spring", "portraits": chosen, "expires_on": "", "password": "open-sesame", "pin": "123456"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_context(tenant_a.studio):
        gallery = Gallery.objects.get(title="Spring")
        assert list(gallery.entries.order_by("position").values_list("portrait_id", flat=True)) == chosen
        assert gallery.expires_at is None  # "open until" left empty: never
        assert check_password("open-sesame", gallery.password_hash) and check_password("123456", gallery.pin_hash)
        assert gallery.allow_more_like_me is False  # the box was not ticked
    assert response["Location"].endswith(f"/galleries/{gallery.pk}/")


def test_new_gallery_refusals_keep_the_form(client_a: Any, tenant_a: Tenant):
    client, _ = setup(tenant_a)
    other, other_run = setup(tenant_a)
    with tenant_context(tenant_a.studio):
        theirs = Portrait.objects.filter(run=other_run).first()
    response = client_a.post(url(tenant_a, f"new/{client.pk}/"), {"title": "X", "portraits": [theirs.pk]})
    assert response.status_code == 400
    assert "another client" in response.content.decode()
    response = client_a.post(url(tenant_a, f"new/{client.pk}/"), {"title": "X", "pin": "12"})
    assert response.status_code == 400
    assert "6 to 8 digits" in response.content.decode()
    response = client_a.post(url(tenant_a, f"new/{client.pk}/"), {"title": "X", "expires_on": "2001-01-01"})
    assert response.status_code == 400
    with tenant_context(tenant_a.studio):
        assert not Gallery.objects.exists()


def test_create_a_gallery_from_the_picks_of_a_run(client_a: Any, tenant_a: Tenant):
    client, run = setup(tenant_a, picks=3, others=1)
    page = client_a.get(f"{tenant_a.prefix}/runs/{run.pk}/").content.decode()
    assert f'action="{tenant_a.prefix}/galleries/from-run/{run.pk}/"' in page
    response = client_a.post(url(tenant_a, f"from-run/{run.pk}/"))
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        gallery = Gallery.objects.get()
        picks = list(Portrait.objects.filter(run=run, is_pick=True).order_by("rank").values_list("pk", flat=True))
        assert list(gallery.entries.order_by("position").values_list("portrait_id", flat=True)) == picks
        assert gallery.client_id == client.pk and gallery.run_id == run.pk
        Portrait.objects.filter(run=run).update(is_pick=False)
    response = client_a.post(url(tenant_a, f"from-run/{run.pk}/"))
    assert response.status_code == 409
    assert "no picks" in response.content.decode()
    assert client_a.get(url(tenant_a, f"from-run/{run.pk}/")).status_code == 405


def test_the_client_page_lists_the_clients_galleries(client_a: Any, tenant_a: Tenant):
    gallery = gallery_of(tenant_a, title="On the client page")
    page = client_a.get(f"{tenant_a.prefix}/clients/{gallery.client_id}/").content.decode()
    assert "On the client page" in page
    assert f'href="{tenant_a.prefix}/galleries/new/{gallery.client_id}/"' in page


# --- A gallery ------------------------------------------------------------------------------------------------


def test_the_gallery_page_shows_portraits_favorites_link_entitlements_and_stats(client_a: Any, tenant_a: Tenant):
    gallery = gallery_of(tenant_a, picks=2, others=2)
    with tenant_context(tenant_a.studio):
        first, second = gallery.entries.order_by("position").values_list("portrait_id", flat=True)
        GalleryPortrait.objects.filter(gallery=gallery, portrait_id=second).update(is_favorite=True)
        services.grant_entitlements(gallery=gallery, portraits=[first], size="full")
        for kind in ("view", "view", "favorite", "download"):
            GalleryEvent.objects.create(gallery=gallery, kind=kind)
    response = client_a.get(url(tenant_a, f"{gallery.pk}/"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'value="http://testserver{tenant_a.prefix}/g/{gallery.token}/"' in page  # the share link
    assert f'id="entry-{second}" data-favorite="true"' in page
    assert f'id="entry-{first}" data-favorite="false"' in page
    assert page.count(f"{tenant_a.prefix}/media/") >= 4  # thumbnails and previews, signed
    assert 'data-active="true"' in page  # the entitlement
    assert '<strong id="total-views">2</strong>' in page
    assert '<strong id="total-downloads">1</strong>' in page
    assert 'class="bar-views"' in page
    assert "Add portraits of" in page  # the client's other portrait can be added


def test_staff_manage_a_gallery_from_its_page(
    client: Any, tenant_a: Tenant, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    signed_in_as(client, tenant_a, Role.STAFF)
    gallery = gallery_of(tenant_a, picks=2, others=2)
    base = url(tenant_a, f"{gallery.pk}/")
    with tenant_context(tenant_a.studio):
        entries = list(gallery.entries.order_by("position").values_list("portrait_id", flat=True))
        extra = Portrait.objects.filter(run=gallery.run, is_pick=False).values_list("pk", flat=True)[0]

    assert client.post(base + "portraits/add/", {"portraits": [extra]}).status_code == 302
    assert client.post(base + f"portraits/{entries[0]}/remove/").status_code == 302
    assert client.post(base + "password/", {"action": "set", "password": "moonlight"}).status_code == 302
    assert client.post(base + "pin/", {"action": "set", "pin": "432198"}).status_code == 302
    assert client.post(base + "pin/", {"action": "set", "pin": "43"}).status_code == 400
    day = (timezone.localdate() + timedelta(days=12)).isoformat()
    response = client.post(
        base + "edit/",
        {"title": "Renamed", "message": "Hello!", "expires_on": day, "allow_more_like_me": "on", "download_limit": "3"},
    )
    assert response.status_code == 302
    assert client.post(base + "entitlements/grant/", {"portraits": [entries[1]], "size": "web"}).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(base + "share/").status_code == 302
    with tenant_context(tenant_a.studio):
        gallery = Gallery.objects.get(pk=gallery.pk)
        assert list(gallery.entries.order_by("position").values_list("portrait_id", flat=True)) == [entries[1], extra]
        assert gallery.title == "Renamed" and gallery.message == "Hello!" and gallery.download_limit == 3
        assert timezone.localtime(gallery.expires_at).date().isoformat() == day
        assert check_password("moonlight", gallery.password_hash) and check_password("432198", gallery.pin_hash)
        entitlement = Entitlement.objects.get(gallery=gallery)
        assert (entitlement.portrait_id, entitlement.size, entitlement.download_limit) == (entries[1], "web", 3)
        assert gallery.shared_at is not None
    assert len(mailoutbox) == 1
    assert f"http://testserver{tenant_a.prefix}/g/{gallery.token}/" in mailoutbox[0].body
    assert "moonlight" not in mailoutbox[0].body and "4321" not in mailoutbox[0].body

    assert client.post(base + f"entitlements/{entitlement.pk}/revoke/").status_code == 302
    assert client.post(base + "revoke/").status_code == 302
    with tenant_context(tenant_a.studio):
        assert Entitlement.objects.get(pk=entitlement.pk).revoked_at is not None
        assert Gallery.objects.get(pk=gallery.pk).revoked_at is not None
    response = client.post(base + "share/")  # revoked: refused with its status, on the gallery page
    assert response.status_code == 409 and "revoked" in response.content.decode()
    assert client.post(base + "restore/").status_code == 302
    assert client.post(base + "password/", {"action": "clear"}).status_code == 302
    assert client.post(base + "pin/", {"action": "clear"}).status_code == 302
    with tenant_context(tenant_a.studio):
        gallery = Gallery.objects.get(pk=gallery.pk)
        assert (gallery.revoked_at, gallery.password_hash, gallery.pin_hash) == (None, "", "")


def test_sharing_needs_the_clients_email(client_a: Any, tenant_a: Tenant, mailoutbox: list):
    gallery = gallery_of(tenant_a)
    with tenant_context(tenant_a.studio):
        gallery.client.email = ""
        gallery.client.save()
    response = client_a.post(url(tenant_a, f"{gallery.pk}/share/"))
    assert response.status_code == 409
    assert "no email address" in response.content.decode()
    assert mailoutbox == []


def test_photographers_look_but_get_a_403_with_a_message_on_actions(client: Any, tenant_a: Tenant):
    signed_in_as(client, tenant_a, Role.PHOTOGRAPHER)
    gallery = gallery_of(tenant_a)
    with tenant_context(tenant_a.studio):
        portrait_id = gallery.entries.first().portrait_id
        entitlement = services.grant_entitlements(gallery=gallery, portraits=[portrait_id], size="full")[0]
    assert client.get(url(tenant_a)).status_code == 200
    page = client.get(url(tenant_a, f"{gallery.pk}/")).content.decode()
    assert "Send to client" not in page and "Revoke the link" not in page
    for path in (
        "share/",
        "revoke/",
        "restore/",
        "edit/",
        "password/",
        "pin/",
        "portraits/add/",
        f"portraits/{portrait_id}/remove/",
        "entitlements/grant/",
        f"entitlements/{entitlement.pk}/revoke/",
    ):
        response = client.post(url(tenant_a, f"{gallery.pk}/{path}"), {"title": "x", "portraits": [portrait_id]})
        assert response.status_code == 403, path
        assert "Photographers can look" in response.content.decode()
    assert client.get(url(tenant_a, f"new/{gallery.client_id}/")).status_code == 403
    assert client.post(url(tenant_a, f"from-run/{gallery.run_id}/")).status_code == 403
    with tenant_context(tenant_a.studio):
        assert Gallery.objects.get(pk=gallery.pk).shared_at is None
        assert Gallery.objects.count() == 1


def test_another_studios_objects_are_404_everywhere(client_a: Any, tenant_a: Tenant, tenant_b: Tenant):
    mine = gallery_of(tenant_a)
    theirs = gallery_of(tenant_b)
    with tenant_context(tenant_b.studio):
        their_portrait = theirs.entries.first().portrait_id
        their_entitlement = services.grant_entitlements(gallery=theirs, portraits=[their_portrait], size="full")[0]
    with tenant_context(tenant_a.studio):
        my_portrait = mine.entries.first().portrait_id
        my_entitlement = services.grant_entitlements(gallery=mine, portraits=[my_portrait], size="full")[0]
    paths = [
        f"{theirs.pk}/",
        f"{theirs.pk}/share/",
        f"{theirs.pk}/edit/",
        f"{theirs.pk}/revoke/",
        f"{theirs.pk}/portraits/add/",
        f"{theirs.pk}/entitlements/grant/",
        f"new/{theirs.client_id}/",
        f"from-run/{theirs.run_id}/",
        # Their portrait or entitlement under my own gallery.
        f"{mine.pk}/portraits/{their_portrait}/remove/",
        f"{mine.pk}/entitlements/{their_entitlement.pk}/revoke/",
    ]
    for path in paths:
        for method in ("get", "post"):
            assert getattr(client_a, method)(url(tenant_a, path)).status_code == 404, (method, path)
    # Adding their portrait to my gallery: a 400 naming it as unknown here, nothing added.
    response = client_a.post(url(tenant_a, f"{mine.pk}/portraits/add/"), {"portraits": [their_portrait]})
    assert response.status_code == 400 and "exist in this studio" in response.content.decode()
    response = client_a.post(url(tenant_a, f"{mine.pk}/entitlements/grant/"), {"portraits": [their_portrait]})
    assert response.status_code == 400
    assert my_entitlement.revoked_at is None


# --- The studio's settings ------------------------------------------------------------------------------------


def test_owners_and_managers_change_the_settings_others_look(client: Any, tenant_a: Tenant):
    signed_in_as(client, tenant_a, Role.MANAGER)
    page = url(tenant_a, "settings/")
    assert client.get(page).status_code == 200
    data = {"expiry_days": "14", "reminder_days": "2", "download_limit": "0", "allow_more_like_me": ""}
    assert client.post(page, data).status_code == 302
    with tenant_context(tenant_a.studio):
        row = GallerySettings.objects.get()
        assert (row.expiry_days, row.reminder_days, row.download_limit, row.allow_more_like_me) == (14, 2, 0, False)
    assert client.post(page, {**data, "expiry_days": "5000"}).status_code == 400
    assert client.post(page, {**data, "reminder_days": "-1"}).status_code == 400

    signed_in_as(client, tenant_a, Role.STAFF)
    response = client.get(page)
    assert response.status_code == 200 and "14 days" in response.content.decode()
    response = client.post(page, {**data, "expiry_days": "1"})
    assert response.status_code == 403 and "owners and managers" in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert GallerySettings.objects.get().expiry_days == 14


def test_the_studio_admin_shows_galleries_read_only(client_a: Any, tenant_a: Tenant):
    gallery = gallery_of(tenant_a, title="In the admin", password="hidden-value")
    response = client_a.get(f"{tenant_a.prefix}/admin/galleries/gallery/")
    assert response.status_code == 200 and "In the admin" in response.content.decode()
    response = client_a.get(f"{tenant_a.prefix}/admin/galleries/gallery/{gallery.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "hidden-value" not in page and gallery.password_hash not in page and gallery.token not in page
    assert page.count("Portrait ") >= 2  # the entries inline
    assert client_a.get(f"{tenant_a.prefix}/admin/galleries/gallery/add/").status_code == 403
