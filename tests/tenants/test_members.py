"""The members page and its actions: roles, removal, revoking invitations; who may do what; other studios' ids."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.context import tenant_context
from tenants.models import Invitation, Membership, Role
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def _membership(tenant, user) -> Membership:
    with tenant_context(tenant.studio):
        return Membership.objects.get(user=user)


def _invite(tenant, email: str, role: str = Role.STAFF) -> Invitation:
    return services.invite_member(studio=tenant.studio, email=email, role=role, invited_by=tenant.owner)


# --- The page -------------------------------------------------------------------------------------------------


def test_members_page_lists_members_and_pending_invitations(client_a, two_tenants):
    a, b = two_tenants
    add_member(a, "photo@studio-a.example", Role.PHOTOGRAPHER)
    _invite(a, "pending@example.com", Role.MANAGER)
    _invite(b, "b-pending@example.com")
    revoked = _invite(a, "revoked@example.com")
    with tenant_context(a.studio):
        services.revoke_invitation(invitation=revoked, revoked_by=a.owner)

    response = client_a.get(f"{a.prefix}/members/")
    assert response.status_code == 200
    body = response.content.decode()
    assert a.owner.email in body and "photo@studio-a.example" in body
    assert "pending@example.com" in body and "Studio A Owner" in body  # who invited
    assert "revoked@example.com" not in body
    # Nothing of the other studio.
    assert b.owner.email not in body and "b-pending@example.com" not in body
    # Owners get the controls, except on the only owner, who can be neither demoted nor removed.
    assert "Send invitation" in body and "Revoke" in body and 'name="role"' in body
    assert f"/members/{a.membership.pk}/remove/" not in body and "the only owner" in body


def test_owners_are_listed_first(client_a, two_tenants):
    a, _ = two_tenants
    add_member(a, "aaa-staff@studio-a.example", Role.STAFF)
    body = client_a.get(f"{a.prefix}/members/").content.decode()
    assert body.index(a.owner.email) < body.index("aaa-staff@studio-a.example")


def test_staff_see_the_members_but_no_controls_or_invitations(client, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    _invite(a, "pending@example.com")
    client.force_login(staff)
    response = client.get(f"{a.prefix}/members/")
    assert response.status_code == 200
    body = response.content.decode()
    assert a.owner.email in body
    assert "pending@example.com" not in body
    assert "Send invitation" not in body and "Remove" not in body
    assert '<select name="role"' not in body  # (the only select left is the account menu's language)
    assert body.count("<select") == 1 and 'id="account-language"' in body


def test_members_page_needs_a_member(client, two_tenants):
    a, b = two_tenants
    response = client.get(f"{a.prefix}/members/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(b.owner)
    assert client.get(f"{a.prefix}/members/").status_code == 404


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_members_page_query_count_does_not_grow_with_rows(client_a, two_tenants, django_assert_max_num_queries):
    a, _ = two_tenants
    url = f"{a.prefix}/members/"
    add_member(a, "m0@studio-a.example", Role.STAFF)
    _invite(a, "i0@example.com")
    few = _count_queries(client_a, url)

    for i in range(1, 8):
        add_member(a, f"m{i}@studio-a.example", Role.PHOTOGRAPHER if i % 2 else Role.MANAGER)
        _invite(a, f"i{i}@example.com", Role.STAFF)
    many = _count_queries(client_a, url)
    assert many == few
    # studio, session, user, membership, members (with users), pending invitations (with inviters); on
    # PostgreSQL also the two SET LOCALs of the tenant scope and the request's savepoint.
    with django_assert_max_num_queries(10):
        client_a.get(url)


# --- Changing roles -------------------------------------------------------------------------------------------


def _role_url(tenant, membership: Membership) -> str:
    return f"{tenant.prefix}/members/{membership.pk}/role/"


def test_owner_changes_a_role(client_a, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    membership = _membership(a, staff)
    response = client_a.post(_role_url(a, membership), {"role": Role.MANAGER})
    assert response.status_code == 302 and response["Location"] == f"{a.prefix}/members/"
    assert _membership(a, staff).role == Role.MANAGER
    assert "staff@studio-a.example is now Manager." in client_a.get(response["Location"]).content.decode()


def test_manager_cannot_make_an_owner_or_touch_one(client, two_tenants):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    client.force_login(manager)

    promote = client.post(_role_url(a, _membership(a, staff)), {"role": Role.OWNER})
    assert promote.status_code == 403
    assert "Only an owner can make someone an owner" in promote.content.decode()
    assert _membership(a, staff).role == Role.STAFF

    demote = client.post(_role_url(a, a.membership), {"role": Role.STAFF})
    assert demote.status_code == 403
    assert _membership(a, a.owner).role == Role.OWNER

    ok = client.post(_role_url(a, _membership(a, staff)), {"role": Role.PHOTOGRAPHER})
    assert ok.status_code == 302
    assert _membership(a, staff).role == Role.PHOTOGRAPHER


def test_the_last_owner_cannot_be_demoted(client_a, two_tenants):
    a, _ = two_tenants
    response = client_a.post(_role_url(a, a.membership), {"role": Role.MANAGER})
    assert response.status_code == 400
    assert "last owner" in response.content.decode()
    assert _membership(a, a.owner).role == Role.OWNER


def test_an_owner_can_be_demoted_when_another_owner_remains(client_a, two_tenants):
    a, _ = two_tenants
    second = add_member(a, "second-owner@studio-a.example", Role.OWNER)
    response = client_a.post(_role_url(a, _membership(a, second)), {"role": Role.STAFF})
    assert response.status_code == 302
    assert _membership(a, second).role == Role.STAFF


def test_an_unknown_role_is_a_400(client_a, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    response = client_a.post(_role_url(a, _membership(a, staff)), {"role": "emperor"})
    assert response.status_code == 400
    assert "Choose one of the studio&#x27;s roles." in response.content.decode()


def test_staff_cannot_change_roles(client, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    client.force_login(staff)
    assert client.post(_role_url(a, _membership(a, staff)), {"role": Role.OWNER}).status_code == 404
    assert _membership(a, staff).role == Role.STAFF


# --- Removing members -----------------------------------------------------------------------------------------


def _remove_url(tenant, membership: Membership) -> str:
    return f"{tenant.prefix}/members/{membership.pk}/remove/"


def test_owner_removes_a_member(client_a, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    response = client_a.post(_remove_url(a, _membership(a, staff)))
    assert response.status_code == 302
    with tenant_context(a.studio):
        assert not Membership.objects.filter(user=staff).exists()
    staff.refresh_from_db()  # the account stays


def test_the_last_owner_cannot_be_removed(client_a, two_tenants):
    a, _ = two_tenants
    response = client_a.post(_remove_url(a, a.membership))
    assert response.status_code == 400
    assert "last owner" in response.content.decode()
    assert _membership(a, a.owner)


def test_manager_cannot_remove_an_owner(client, two_tenants):
    a, _ = two_tenants
    add_member(a, "second-owner@studio-a.example", Role.OWNER)
    client.force_login(add_member(a, "manager@studio-a.example", Role.MANAGER))
    response = client.post(_remove_url(a, a.membership))
    assert response.status_code == 403
    assert _membership(a, a.owner)


def test_a_member_who_leaves_is_sent_to_the_sign_in_page(client, two_tenants):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    client.force_login(manager)
    response = client.post(_remove_url(a, _membership(a, manager)))
    assert response.status_code == 302 and response["Location"] == f"{a.prefix}/accounts/login/"
    assert client.get(f"{a.prefix}/").status_code == 404


# --- Revoking invitations -------------------------------------------------------------------------------------


def test_manager_revokes_an_invitation(client_a, two_tenants):
    a, _ = two_tenants
    invitation = _invite(a, "pending@example.com")
    response = client_a.post(f"{a.prefix}/members/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    with tenant_context(a.studio):
        invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    again = client_a.post(f"{a.prefix}/members/invitations/{invitation.pk}/revoke/")
    assert again.status_code == 400 and "already revoked" in again.content.decode()


# --- Methods and other studios' ids ---------------------------------------------------------------------------


def test_actions_are_post_only(client_a, two_tenants):
    a, _ = two_tenants
    invitation = _invite(a, "pending@example.com")
    staff_membership = _membership(a, add_member(a, "staff@studio-a.example", Role.STAFF))
    for url in (
        _role_url(a, staff_membership),
        _remove_url(a, staff_membership),
        f"{a.prefix}/members/invitations/{invitation.pk}/revoke/",
    ):
        assert client_a.get(url).status_code == 405


def test_other_studios_ids_are_404(client_a, two_tenants):
    a, b = two_tenants
    b_staff = add_member(b, "staff@studio-b.example", Role.STAFF)
    b_membership = _membership(b, b_staff)
    b_invitation = _invite(b, "pending@example.com")
    urls = [
        _role_url(a, b_membership),
        _remove_url(a, b_membership),
        _role_url(a, b.membership),
        _remove_url(a, b.membership),
        f"{a.prefix}/members/invitations/{b_invitation.pk}/revoke/",
    ]
    for url in urls:
        assert client_a.get(url).status_code == 404, url
        assert client_a.post(url, {"role": Role.OWNER}).status_code == 404, url
    with tenant_context(b.studio):
        assert Membership.objects.get(pk=b_membership.pk).role == Role.STAFF
        assert Invitation.objects.get(pk=b_invitation.pk).revoked_at is None


def test_non_members_get_404_for_every_action(client, two_tenants):
    a, b = two_tenants
    a_invitation = _invite(a, "pending@example.com")
    client.force_login(b.owner)
    for url in (
        _role_url(a, a.membership),
        _remove_url(a, a.membership),
        f"{a.prefix}/members/invitations/{a_invitation.pk}/revoke/",
        f"{a.prefix}/members/invite/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"role": Role.STAFF, "email": "x@example.com"}).status_code == 404, url
