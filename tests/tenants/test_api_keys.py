"""API keys: made, stored hashed, shown once, checked per studio, revoked; and the API keys page."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.api_keys import KEY_RE, authenticate_key, create_api_key, hash_key, revoke_api_key
from tenants.context import TenantContextMissing, tenant_context
from tenants.models import ApiKey, Role
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def _key(tenant, name="Booking site"):
    with tenant_context(tenant.studio):
        return create_api_key(name=name, created_by=tenant.owner)


def _get(client, tenant, raw_key, path="/api/studio/", scheme="Api-Key"):
    return client.get(f"{tenant.prefix}{path}", headers={"Authorization": f"{scheme} {raw_key}"})


# --- The service ----------------------------------------------------------------------------------------------


def test_key_format_and_only_the_hash_is_stored(two_tenants):
    a, _ = two_tenants
    api_key, raw = _key(a)
    match = KEY_RE.match(raw)
    assert match and match["prefix"] == api_key.prefix
    assert len(api_key.prefix) == 10 and api_key.prefix.isalnum() and api_key.prefix.islower()
    assert len(match["secret"]) >= 43  # 32 random bytes, urlsafe base64
    stored = ApiKey.objects.unscoped().filter(pk=api_key.pk)
    with tenant_context(a.studio):
        row = stored.values().get()
    assert row["hashed_key"] == hashlib.sha256(raw.encode()).hexdigest() == hash_key(raw)
    assert raw not in {str(v) for v in row.values()}
    assert row["studio_id"] == a.studio.pk and row["created_by_id"] == a.owner.pk


def test_keys_are_unique(two_tenants):
    a, _ = two_tenants
    raws = {_key(a, name=f"k{i}")[1] for i in range(5)}
    assert len(raws) == 5


def test_create_needs_a_tenant_context(two_tenants):
    a, _ = two_tenants
    with pytest.raises(TenantContextMissing):
        create_api_key(name="x", created_by=a.owner)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_name_is_required_and_bounded(two_tenants, name):
    a, _ = two_tenants
    with tenant_context(a.studio), pytest.raises(ValidationError) as exc:
        create_api_key(name=name, created_by=a.owner)
    assert "name" in exc.value.message_dict


def test_name_is_unique_among_active_keys_of_the_studio(two_tenants):
    a, b = two_tenants
    first, _ = _key(a, "Zapier")
    with tenant_context(a.studio), pytest.raises(ValidationError, match="already exists"):
        create_api_key(name="zapier ", created_by=a.owner)
    _key(b, "Zapier")  # another studio may use the name
    with tenant_context(a.studio):
        revoke_api_key(api_key=first)
        create_api_key(name="Zapier", created_by=a.owner)  # free again once revoked


def test_authenticate_key_is_scoped_to_the_current_studio(two_tenants):
    a, b = two_tenants
    api_key, raw = _key(a)
    with tenant_context(a.studio):
        assert authenticate_key(raw_key=raw) == api_key
        assert authenticate_key(raw_key=raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
        assert authenticate_key(raw_key="sk_short") is None
    with tenant_context(b.studio):
        assert authenticate_key(raw_key=raw) is None


def test_revoke_is_idempotent(two_tenants):
    a, _ = two_tenants
    api_key, _ = _key(a)
    with tenant_context(a.studio):
        revoke_api_key(api_key=api_key)
        first = api_key.revoked_at
        revoke_api_key(api_key=api_key)
        assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first


# --- Authentication -------------------------------------------------------------------------------------------


def test_a_valid_key_authenticates_as_the_key(client, two_tenants):
    a, _ = two_tenants
    _, raw = _key(a)
    response = _get(client, a, raw)
    assert response.status_code == 200
    assert response.json()["slug"] == "studio-a"
    assert _get(client, a, raw, scheme="Bearer").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Api-Key", "Api-Key sk_abc", "Api-Key not-a-key", "Api-Key sk_abcdefghij_short", "Bearer sk_nope", "Api-Key a b"],
)
def test_malformed_keys_are_401_with_a_message(client, two_tenants, header):
    a, _ = two_tenants
    response = client.get(f"{a.prefix}/api/studio/", headers={"Authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    body = response.json()
    assert body["error"]["code"] == "authentication_failed"
    assert body["error"]["message"]


def test_unknown_key_is_401(client, two_tenants):
    a, _ = two_tenants
    _, raw = _key(a)
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    response = _get(client, a, forged)
    assert response.status_code == 401
    assert "Invalid API key" in response.json()["error"]["message"]


def test_revoked_key_is_401(client, two_tenants):
    a, _ = two_tenants
    api_key, raw = _key(a)
    assert _get(client, a, raw).status_code == 200
    with tenant_context(a.studio):
        revoke_api_key(api_key=api_key)
    response = _get(client, a, raw)
    assert response.status_code == 401
    assert response.json()["error"]["message"]


def test_another_studios_key_is_401(client, two_tenants):
    a, b = two_tenants
    _, raw_b = _key(b)
    response = _get(client, a, raw_b)
    assert response.status_code == 401
    assert "not a key of this studio" in response.json()["error"]["message"]


def test_the_platform_docs_ignore_api_keys(client, two_tenants):
    a, _ = two_tenants
    _, raw = _key(a)
    response = client.get("/api/schema/", headers={"Authorization": f"Api-Key {raw}"})
    assert response.status_code == 200  # the docs are public and ignore credentials


def test_other_authorization_schemes_are_left_alone(client, two_tenants):
    a, _ = two_tenants
    response = client.get(f"{a.prefix}/api/studio/", headers={"Authorization": "Bearer some-jwt"})
    assert response.status_code == 401  # not authenticated at all (no session), not "invalid key"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_last_used_at_is_written_at_most_once_a_minute(client, two_tenants, django_assert_max_num_queries):
    a, _ = two_tenants
    api_key, raw = _key(a)
    assert api_key.last_used_at is None
    _get(client, a, raw)
    with tenant_context(a.studio):
        first = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert first is not None
    _get(client, a, raw)
    with tenant_context(a.studio):
        assert ApiKey.objects.get(pk=api_key.pk).last_used_at == first
        # A minute later, it moves.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    _get(client, a, raw)
    with tenant_context(a.studio):
        assert ApiKey.objects.get(pk=api_key.pk).last_used_at > first


def test_a_key_request_makes_few_queries(client, two_tenants, django_assert_max_num_queries):
    a, _ = two_tenants
    _, raw = _key(a)
    _get(client, a, raw)  # sets last_used_at
    # studio lookup, SET LOCAL, the key, (savepoints)...: no per-request write once last_used_at is fresh.
    with django_assert_max_num_queries(6):
        assert _get(client, a, raw).status_code == 200


def test_keys_cannot_manage_people_or_keys(client, two_tenants):
    a, _ = two_tenants
    _, raw = _key(a)
    headers = {"Authorization": f"Api-Key {raw}"}
    for path in ("/api/api-keys/", "/api/invitations/"):
        response = client.get(f"{a.prefix}{path}", headers=headers)
        assert response.status_code == 403, path
        assert "API keys cannot" in response.json()["error"]["message"]
    response = client.post(
        f"{a.prefix}/api/api-keys/", {"name": "more"}, content_type="application/json", headers=headers
    )
    assert response.status_code == 403
    response = client.patch(
        f"{a.prefix}/api/studio/", {"name": "Hacked"}, content_type="application/json", headers=headers
    )
    assert response.status_code == 403
    # Reading what any member may read works.
    assert client.get(f"{a.prefix}/api/members/", headers=headers).status_code == 200


def test_a_key_keeps_working_after_its_creator_leaves(client, two_tenants):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    with tenant_context(a.studio):
        _, raw = create_api_key(name="ci", created_by=manager)
        manager.memberships.get().delete()
    assert _get(client, a, raw).status_code == 200


# --- The API keys page ----------------------------------------------------------------------------------------


def test_page_creates_a_key_and_shows_it_once(client_a, tenant_a):
    page = f"{tenant_a.prefix}/api-keys/"
    assert client_a.get(page).status_code == 200
    response = client_a.post(page, {"name": "Website"})
    assert response.status_code == 200
    raw = response.context["new_key_plaintext"]
    assert KEY_RE.match(raw)
    html = response.content.decode()
    assert raw in html and "only time it is shown" in html and 'id="copy-new-key"' in html
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    # Shown once: the next visit lists the key by prefix only.
    again = client_a.get(page).content.decode()
    assert raw not in again and "Website" in again
    with tenant_context(tenant_a.studio):
        assert ApiKey.objects.get(name="Website").hashed_key == hash_key(raw)


def test_page_refuses_a_duplicate_name_with_a_message(client_a, tenant_a):
    page = f"{tenant_a.prefix}/api-keys/"
    client_a.post(page, {"name": "Website"})
    response = client_a.post(page, {"name": "Website"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    response = client_a.post(page, {"name": ""})
    assert response.status_code == 400


def test_page_revokes(client_a, tenant_a):
    api_key, raw = _key(tenant_a)
    url = f"{tenant_a.prefix}/api-keys/{api_key.pk}/revoke/"
    assert client_a.get(url).status_code == 405
    response = client_a.post(url)
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert _get(client_a, tenant_a, raw).status_code == 401


def test_page_is_for_owners_and_managers(client, two_tenants):
    a, _ = two_tenants
    page = f"{a.prefix}/api-keys/"
    for role, expected in ((Role.MANAGER, 200), (Role.PHOTOGRAPHER, 404), (Role.STAFF, 404)):
        user = add_member(a, f"{role}@studio-a.example", role)
        client.force_login(user)
        assert client.get(page).status_code == expected, role
    client.logout()
    assert client.get(page).status_code == 302
