"""The galleries API, the studio's side (galleries/api.py): galleries, their portraits, access, sharing,
entitlements, statistics and the studio's settings; who may do what; another studio's ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.utils import timezone

from galleries import services
from galleries.models import Entitlement, Gallery, GalleryEvent
from generation.models import Portrait
from tenants.context import tenant_context
from tenants.models import Role
from tests.clients.factories import make_client
from tests.conftest import Tenant, add_member
from tests.galleries.factories import run_with_portraits, studio_double, use_private_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    use_private_storage(settings, tmp_path / "private-media")


def api(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/api/{path}"


def setup(tenant: Tenant, picks: int = 2, others: int = 1) -> tuple[Any, Any]:
    with tenant_context(tenant.studio):
        client = make_client(tenant)
        double = studio_double(tenant, client=client)
        return client, run_with_portraits(tenant, double=double, picks=picks, others=others)


def key_headers(tenant: Tenant) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="shop", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] and body["message"]
    return body["message"]


def test_create_from_a_runs_picks_list_retrieve_and_update(client_a: Any, tenant_a: Tenant):
    client, run = setup(tenant_a)
    response = client_a.post(
        api(tenant_a, "galleries/"), {"client": client.pk, "run": run.pk, "pin": "123456"}, "application/json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    with tenant_context(tenant_a.studio):
        picks = list(Portrait.objects.filter(run=run, is_pick=True).order_by("rank").values_list("pk", flat=True))
    assert [p["portrait_id"] for p in created["portraits"]] == picks
    assert all("/media/" in p["thumbnail"] and "/media/" in p["preview"] for p in created["portraits"])
    assert created["status"] == "draft" and created["has_pin"] is True and created["has_password"] is False
    assert "pin" not in created and "pin_hash" not in created and "password" not in created
    with tenant_context(tenant_a.studio):
        token = Gallery.objects.get().token
    assert created["url"] == f"http://testserver{tenant_a.prefix}/g/{token}/"
    assert created["client_id"] == client.pk and created["run_id"] == run.pk and created["expires_at"]

    listed = client_a.get(api(tenant_a, "galleries/")).json()
    assert [(g["id"], g["portrait_count"], g["favorite_count"]) for g in listed["results"]] == [(created["id"], 2, 0)]
    url = api(tenant_a, f"galleries/{created['id']}/")
    assert client_a.get(url).json()["title"] == created["title"]
    response = client_a.patch(url, {"title": "Renamed", "expires_at": None, "download_limit": 2}, "application/json")
    assert response.status_code == 200, response.content
    assert (response.json()["title"], response.json()["expires_at"], response.json()["download_limit"]) == (
        "Renamed",
        None,
        2,
    )
    past = (timezone.now() - timedelta(days=1)).isoformat()
    assert "future" in error(client_a.patch(url, {"expires_at": past}, "application/json"), 400)


def test_create_refusals(client_a: Any, tenant_a: Tenant, tenant_b: Tenant):
    client, run = setup(tenant_a)
    other, other_run = setup(tenant_a)
    their_client, their_run = setup(tenant_b)
    with tenant_context(tenant_a.studio):
        other_portrait = Portrait.objects.filter(run=other_run).first().pk
    post = lambda body: client_a.post(api(tenant_a, "galleries/"), body, "application/json")  # noqa: E731
    assert "another client" in error(post({"client": client.pk, "portraits": [other_portrait]}), 400)
    assert "another client" in error(post({"client": client.pk, "run": other_run.pk}), 400)
    error(post({"client": their_client.pk}), 400)  # another studio's client: unknown here
    error(post({"client": client.pk, "run": their_run.pk}), 400)
    error(post({"client": client.pk, "pin": "12"}), 400)
    error(post({"client": client.pk, "password": "ab"}), 400)
    with tenant_context(tenant_a.studio):
        Portrait.objects.filter(run=run).update(is_pick=False)
    assert "no picks" in error(post({"client": client.pk, "run": run.pk}), 409)
    with tenant_context(tenant_a.studio):
        assert not Gallery.objects.exists()


def test_portraits_access_sharing_and_stats(
    client_a: Any, tenant_a: Tenant, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    client, run = setup(tenant_a, picks=2, others=2)
    with tenant_context(tenant_a.studio):
        gallery = services.create_gallery(client=client, run=run)
        first, second = gallery.entries.order_by("position").values_list("portrait_id", flat=True)
        others = list(Portrait.objects.filter(run=run, is_pick=False).values_list("pk", flat=True))
    base = api(tenant_a, f"galleries/{gallery.pk}/")
    response = client_a.post(base + "portraits/", {"portraits": others}, "application/json")
    assert [p["portrait_id"] for p in response.json()["portraits"]] == [first, second, *others]
    assert client_a.delete(base + f"portraits/{first}/").status_code == 204
    error(client_a.delete(base + f"portraits/{first}/"), 404)
    response = client_a.put(base + "order/", {"portraits": [others[1], second, others[0]]}, "application/json")
    assert [p["portrait_id"] for p in response.json()["portraits"]] == [others[1], second, others[0]]

    response = client_a.post(base + "password/", {"password": "tide-pool"}, "application/json")
    assert response.json()["has_password"] is True and "tide-pool" not in response.content.decode()
    assert client_a.post(base + "pin/", {"pin": "55667788"}, "application/json").json()["has_pin"] is True
    error(client_a.post(base + "pin/", {"pin": "5566778899"}, "application/json"), 400)
    with tenant_context(tenant_a.studio):
        row = Gallery.objects.get(pk=gallery.pk)
        assert check_password("tide-pool", row.password_hash) and check_password("55667788", row.pin_hash)
    assert client_a.delete(base + "pin/").json()["has_pin"] is False

    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(base + "share/")
    assert response.status_code == 200 and response.json()["status"] == "shared"
    assert len(mailoutbox) == 1 and f"/g/{gallery.token}/" in mailoutbox[0].body
    assert "tide-pool" not in mailoutbox[0].body
    assert client_a.post(base + "revoke/").json()["status"] == "revoked"
    assert "revoked" in error(client_a.post(base + "share/"), 409)
    assert client_a.post(base + "restore/").json()["status"] == "shared"
    response = client_a.post(base + "extend/", {"days": 5}, "application/json")
    assert response.status_code == 200

    with tenant_context(tenant_a.studio):
        GalleryEvent.objects.create(gallery=gallery, kind="view")
        GalleryEvent.objects.create(gallery=gallery, kind="download")
    stats = client_a.get(base + "stats/").json()
    assert len(stats["days"]) == 30
    assert stats["days"][-1] == {"day": timezone.localdate().isoformat(), "views": 1, "favorites": 0, "downloads": 1}
    assert stats["totals"]["views"] == 1 and stats["totals"]["emails"] == 1


def test_entitlements_grant_list_revoke(client_a: Any, tenant_a: Tenant):
    client, run = setup(tenant_a)
    with tenant_context(tenant_a.studio):
        gallery = services.create_gallery(client=client, run=run)
        first, second = gallery.entries.order_by("position").values_list("portrait_id", flat=True)
        outside = Portrait.objects.filter(run=run, is_pick=False).first().pk
    url = api(tenant_a, f"galleries/{gallery.pk}/entitlements/")
    response = client_a.post(url, {"portraits": [first, second], "size": "web"}, "application/json")
    assert response.status_code == 201, response.content
    granted = response.json()
    assert [(e["portrait_id"], e["size"], e["source"], e["download_limit"]) for e in granted] == [
        (first, "web", "staff", 5),
        (second, "web", "staff", 5),
    ]
    assert "not in this gallery" in error(client_a.post(url, {"portraits": [outside]}, "application/json"), 400)
    error(client_a.post(url, {"portraits": [first], "size": "poster"}, "application/json"), 400)
    assert len(client_a.get(url).json()["results"]) == 2
    assert client_a.delete(url + f"{granted[0]['id']}/").status_code == 204
    assert client_a.get(url + f"{granted[0]['id']}/").json()["is_active"] is False


def test_settings_are_read_by_all_and_changed_by_owners_and_managers(client: Any, tenant_a: Tenant):
    url = api(tenant_a, "gallery-settings/")
    client.force_login(tenant_a.owner)
    assert client.get(url).json()["expiry_days"] == 30
    response = client.patch(url, {"expiry_days": 10, "reminder_days": 1}, "application/json")
    assert response.status_code == 200 and response.json()["expiry_days"] == 10
    error(client.patch(url, {"expiry_days": 9999}, "application/json"), 400)
    client.force_login(add_member(tenant_a, "staff@studio-a.example", Role.STAFF))
    assert client.get(url).json()["reminder_days"] == 1
    assert "owners and managers" in error(client.patch(url, {"expiry_days": 1}, "application/json"), 403)
    client.logout()
    headers = key_headers(tenant_a)
    assert client.get(url, headers=headers).status_code == 200
    error(client.patch(url, {"expiry_days": 1}, "application/json", headers=headers), 403)


def test_photographers_read_keys_write_and_other_studios_get_404(client: Any, tenant_a: Tenant, tenant_b: Tenant):
    client_obj, run = setup(tenant_a)
    _, their_run = setup(tenant_b)
    with tenant_context(tenant_a.studio):
        gallery = services.create_gallery(client=client_obj, run=run)
    with tenant_context(tenant_b.studio):
        theirs = services.create_gallery(client=their_run.double.client, run=their_run)
        their_portrait = theirs.entries.first().portrait_id
        their_entitlement = services.grant_entitlements(gallery=theirs, portraits=[their_portrait], size="full")[0]

    client.force_login(add_member(tenant_a, "photo@studio-a.example", Role.PHOTOGRAPHER))
    assert client.get(api(tenant_a, f"galleries/{gallery.pk}/")).status_code == 200
    assert "Photographers can look" in error(client.post(api(tenant_a, f"galleries/{gallery.pk}/share/")), 403)
    error(client.post(api(tenant_a, "galleries/"), {"client": client_obj.pk}, "application/json"), 403)
    error(client.post(api(tenant_a, f"galleries/{theirs.pk}/share/")), 404)  # the object check goes first

    client.logout()
    headers = key_headers(tenant_a)
    response = client.post(
        api(tenant_a, "galleries/"), {"client": client_obj.pk, "run": run.pk}, "application/json", headers=headers
    )
    assert response.status_code == 201
    for method, path in [
        ("get", f"galleries/{theirs.pk}/"),
        ("patch", f"galleries/{theirs.pk}/"),
        ("post", f"galleries/{theirs.pk}/revoke/"),
        ("get", f"galleries/{theirs.pk}/stats/"),
        ("get", f"galleries/{theirs.pk}/entitlements/"),
        ("delete", f"galleries/{gallery.pk}/entitlements/{their_entitlement.pk}/"),
        ("delete", f"galleries/{gallery.pk}/portraits/{their_portrait}/"),
    ]:
        response = getattr(client, method)(api(tenant_a, path), {}, "application/json", headers=headers)
        assert response.status_code == 404, (method, path, response.status_code)
    with tenant_context(tenant_b.studio):
        assert Gallery.objects.get(pk=theirs.pk).revoked_at is None
        assert Entitlement.objects.get(pk=their_entitlement.pk).revoked_at is None


def test_the_galleries_api_is_in_the_schema_without_warnings(client: Any):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    schema = client.get("/api/schema/?format=json").json()
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert problems == []
    validate_schema(schema)
    for path in (
        "/api/galleries/",
        "/api/galleries/{gallery_id}/",
        "/api/galleries/{gallery_id}/portraits/{portrait_id}/",
        "/api/galleries/{gallery_id}/share/",
        "/api/galleries/{gallery_id}/stats/",
        "/api/galleries/{gallery_id}/entitlements/{entitlement_id}/",
        "/api/gallery-settings/",
    ):
        assert path in schema["paths"], path
