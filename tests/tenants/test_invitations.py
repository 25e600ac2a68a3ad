"""Invitations: the service's rules, the email sent on commit, and the accept page for every kind of link."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.core import mail, signing
from django.utils import timezone

from tenants import services
from tenants.context import tenant_context
from tenants.models import Invitation, Membership, Role, User
from tenants.selectors import invitation_signer
from tests.conftest import TEST_PASSWORD, add_member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-and-unusual-passphrase-7"


def _invite(tenant, email="new.person@example.com", role=Role.STAFF, by=None, base_url=None) -> Invitation:
    return services.invite_member(
        studio=tenant.studio, email=email, role=role, invited_by=by or tenant.owner, base_url=base_url
    )


def _link_path(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://[^/\s]+(/\S*invite/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


def _signed_in_as(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


# --- The service ----------------------------------------------------------------------------------------------


def test_invite_creates_an_invitation_and_mails_a_signed_link_on_commit(
    two_tenants, settings, django_capture_on_commit_callbacks
):
    a, _ = two_tenants
    settings.INVITATION_MAX_AGE_SECONDS = 3600
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invitation = _invite(a, email="  New.Person@Example.com ", role=Role.PHOTOGRAPHER)
    assert mail.outbox == []  # nothing is sent before the transaction commits
    assert len(callbacks) == 1
    callbacks[0]()

    assert invitation.studio_id == a.studio.pk
    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.PHOTOGRAPHER
    assert invitation.invited_by == a.owner
    assert len(invitation.token) >= 32
    assert before + timedelta(seconds=3600) <= invitation.expires_at <= timezone.now() + timedelta(seconds=3600)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert "Studio A" in message.subject and "Photographer" in message.subject
    assert "http://localhost:8000/s/studio-a/invite/" in message.body  # no request: PLATFORM_BASE_URL
    signed = _link_path(message).rstrip("/").rsplit("/", 1)[1]
    assert signed != invitation.token
    assert invitation_signer(a.studio).unsign(signed, max_age=3600) == invitation.token


def test_invite_link_uses_the_requesting_host(two_tenants, django_capture_on_commit_callbacks):
    a, _ = two_tenants
    with django_capture_on_commit_callbacks(execute=True):
        _invite(a, base_url="https://portraits.example.com/")
    assert "https://portraits.example.com/invite/" in mail.outbox[0].body


def test_duplicate_pending_invitation_is_refused(two_tenants):
    a, _ = two_tenants
    _invite(a)
    with pytest.raises(services.ActionRefused, match="already has a pending invitation") as exc:
        _invite(a, email="NEW.person@example.com")
    assert exc.value.status == 400
    with tenant_context(a.studio):
        assert Invitation.objects.count() == 1


def test_same_email_can_be_invited_by_another_studio(two_tenants):
    a, b = two_tenants
    _invite(a)
    _invite(b)
    with tenant_context(b.studio):
        assert Invitation.objects.count() == 1


def test_a_member_cannot_be_invited_again(two_tenants):
    a, b = two_tenants
    with pytest.raises(services.ActionRefused, match="already a member of Studio A"):
        _invite(a, email=a.owner.email.upper())
    # A member of the other studio is a stranger here: they can be invited.
    _invite(a, email=b.owner.email)


def test_expired_or_revoked_invitations_do_not_block_a_new_one(two_tenants):
    a, _ = two_tenants
    first = _invite(a)
    with tenant_context(a.studio):
        Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    second = _invite(a)
    with tenant_context(a.studio):
        services.revoke_invitation(invitation=second, revoked_by=a.owner)
    _invite(a)


def test_only_owners_and_managers_can_invite(two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    photographer = add_member(a, "photo@studio-a.example", Role.PHOTOGRAPHER)
    for user in (staff, photographer):
        with pytest.raises(services.ActionRefused) as exc:
            _invite(a, by=user)
        assert exc.value.status == 403
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    assert _invite(a, by=manager).invited_by == manager


def test_only_an_owner_can_invite_an_owner(two_tenants):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    with pytest.raises(services.ActionRefused, match="Only an owner") as exc:
        _invite(a, role=Role.OWNER, by=manager)
    assert exc.value.status == 403
    assert _invite(a, role=Role.OWNER).role == Role.OWNER


def test_a_member_of_another_studio_cannot_invite_here(two_tenants):
    a, b = two_tenants
    with pytest.raises(services.ActionRefused):
        _invite(a, by=b.owner)


def test_bad_email_and_role_are_refused(two_tenants):
    a, _ = two_tenants
    with pytest.raises(services.ActionRefused, match="not a valid email"):
        _invite(a, email="not-an-email")
    with pytest.raises(services.ActionRefused, match="not a role"):
        _invite(a, role="emperor")


def test_invite_refuses_to_act_for_another_studio_than_the_current_one(two_tenants):
    from tenants.context import CrossTenantWrite

    a, b = two_tenants
    with tenant_context(b.studio), pytest.raises(CrossTenantWrite):
        _invite(a)


# --- Inviting through the page --------------------------------------------------------------------------------


def test_manager_invites_through_the_members_page(client, two_tenants, django_capture_on_commit_callbacks):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    client.force_login(manager)
    page = client.get(f"{a.prefix}/members/invite/")
    assert page.status_code == 200
    assert 'value="owner"' not in page.content.decode()  # managers aren't offered the owner role

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{a.prefix}/members/invite/", {"email": "joiner@example.com", "role": "photographer"})
    assert response.status_code == 302 and response["Location"] == f"{a.prefix}/members/"
    assert len(mail.outbox) == 1
    assert _link_path(mail.outbox[0]).startswith(f"{a.prefix}/invite/")
    assert "http://testserver/s/studio-a/invite/" in mail.outbox[0].body
    follow = client.get(response["Location"])
    assert "Invitation sent to joiner@example.com as Photographer." in follow.content.decode()


def test_manager_posting_owner_role_gets_a_clear_error(client, two_tenants):
    a, _ = two_tenants
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    client.force_login(manager)
    response = client.post(f"{a.prefix}/members/invite/", {"email": "joiner@example.com", "role": "owner"})
    assert response.status_code == 400
    assert "Only an owner can invite someone as an owner." in response.content.decode()
    with tenant_context(a.studio):
        assert not Invitation.objects.exists()


def test_invite_page_errors_are_specific(client_a, tenant_a):
    prefix = tenant_a.prefix
    bad = client_a.post(f"{prefix}/members/invite/", {"email": "nope", "role": "staff", "from": "invite"})
    assert bad.status_code == 400
    assert "Enter a valid email address." in bad.content.decode()
    assert "tenants/invite.html" in [t.name for t in bad.templates]

    member = client_a.post(f"{prefix}/members/invite/", {"email": tenant_a.owner.email, "role": "staff"})
    assert member.status_code == 400
    assert "already a member of Studio A" in member.content.decode()

    client_a.post(f"{prefix}/members/invite/", {"email": "twice@example.com", "role": "staff"})
    twice = client_a.post(f"{prefix}/members/invite/", {"email": "twice@example.com", "role": "staff"})
    assert twice.status_code == 400
    assert "already has a pending invitation" in twice.content.decode()


def test_staff_cannot_reach_the_invite_page(client, two_tenants):
    a, _ = two_tenants
    client.force_login(add_member(a, "staff@studio-a.example", Role.STAFF))
    assert client.get(f"{a.prefix}/members/invite/").status_code == 404
    assert client.post(f"{a.prefix}/members/invite/", {"email": "x@example.com", "role": "staff"}).status_code == 404


# --- Accepting ------------------------------------------------------------------------------------------------


def _signed(tenant, invitation: Invitation) -> str:
    return invitation_signer(tenant.studio).sign(invitation.token)


def test_new_person_accepts_by_choosing_a_name_and_password(client, two_tenants):
    a, _ = two_tenants
    invitation = _invite(a, role=Role.PHOTOGRAPHER)
    url = f"{a.prefix}/invite/{_signed(a, invitation)}/"

    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Join Studio A" in body and "new.person@example.com" in body and "Photographer" in body

    mismatch = client.post(url, {"full_name": "Nia", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 400 and "don&#x27;t match" in mismatch.content.decode()
    weak = client.post(url, {"full_name": "Nia", "password1": "password", "password2": "password"})
    assert weak.status_code == 400 and "too common" in weak.content.decode()
    assert not User.objects.filter(email="new.person@example.com").exists()

    response = client.post(url, {"full_name": "Nia Example", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == f"{a.prefix}/"
    user = User.objects.get(email="new.person@example.com")
    assert user.full_name == "Nia Example" and user.check_password(NEW_PASSWORD)
    assert identify_hasher(user.password).algorithm == get_hasher().algorithm  # the site's (Argon2; MD5 in tests)
    assert _signed_in_as(client) == user.pk
    with tenant_context(a.studio):
        assert Membership.objects.get(user=user).role == Role.PHOTOGRAPHER
        invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.accepted_by == user
    assert client.get(response["Location"]).status_code == 200

    # The link works once.
    client.post(f"{a.prefix}/accounts/logout/")
    again = client.get(url)
    assert again.status_code == 410 and "already used" in again.content.decode()


def test_existing_account_signs_in_to_accept(client, two_tenants):
    a, b = two_tenants
    invitation = _invite(a, email=b.owner.email, role=Role.MANAGER)
    url = f"{a.prefix}/invite/{_signed(a, invitation)}/"
    page = client.get(url)
    assert page.status_code == 200 and "already have an account" in page.content.decode()

    wrong = client.post(url, {"password": "not-it"})
    assert wrong.status_code == 400 and "That password is not right" in wrong.content.decode()
    with tenant_context(a.studio):
        assert not Membership.objects.filter(user=b.owner).exists()

    response = client.post(url, {"password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == f"{a.prefix}/"
    assert _signed_in_as(client) == b.owner.pk
    with tenant_context(a.studio):
        assert Membership.objects.get(user=b.owner).role == Role.MANAGER
    with tenant_context(b.studio):
        assert Membership.objects.get(user=b.owner).role == Role.OWNER  # untouched


def test_signed_in_invitee_confirms_with_one_click(client, two_tenants):
    a, b = two_tenants
    invitation = _invite(a, email=b.owner.email)
    client.force_login(b.owner)
    url = f"{a.prefix}/invite/{_signed(a, invitation)}/"
    page = client.get(url)
    assert page.status_code == 200 and "You are signed in as" in page.content.decode()
    response = client.post(url)
    assert response.status_code == 302
    with tenant_context(a.studio):
        assert Membership.objects.filter(user=b.owner, role=Role.STAFF).exists()


def test_signed_in_as_someone_else_cannot_accept(client, two_tenants):
    a, b = two_tenants
    invitation = _invite(a)
    client.force_login(b.owner)
    url = f"{a.prefix}/invite/{_signed(a, invitation)}/"
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 403
        assert "this invitation is for" in response.content.decode()
    with tenant_context(a.studio):
        assert not Membership.objects.filter(user=b.owner).exists()
        invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_accept_service_refuses_another_address(two_tenants):
    a, b = two_tenants
    invitation = _invite(a)
    with tenant_context(a.studio), pytest.raises(services.ActionRefused) as exc:
        services.accept_invitation(invitation=invitation, user=b.owner)
    assert exc.value.status == 403


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # signature changed
        lambda s: "x" + s,  # token changed
        lambda s: s.split(":")[0],  # the bare token, unsigned
        lambda s: "garbage",
    ],
)
def test_tampered_links_get_a_clear_400(client, two_tenants, tamper):
    a, _ = two_tenants
    invitation = _invite(a)
    response = client.get(f"{a.prefix}/invite/{tamper(_signed(a, invitation))}/")
    assert response.status_code == 400
    assert "This invitation link is not valid" in response.content.decode()
    assert client.post(f"{a.prefix}/invite/{tamper(_signed(a, invitation))}/", {}).status_code == 400


def test_another_studios_link_is_not_valid_here(client, two_tenants):
    a, b = two_tenants
    invitation = _invite(b)
    signed_for_b = _signed(b, invitation)
    response = client.get(f"{a.prefix}/invite/{signed_for_b}/")
    assert response.status_code == 400
    assert "Studio B" not in response.content.decode()
    # Even signed with A's key, B's token names nothing in studio A.
    response = client.get(f"{a.prefix}/invite/{invitation_signer(a.studio).sign(invitation.token)}/")
    assert response.status_code == 404
    assert "No invitation matches this link" in response.content.decode()


def test_expired_signature_gets_a_clear_410(client, two_tenants, settings):
    a, _ = two_tenants
    invitation = _invite(a)
    old = int(time.time()) - settings.INVITATION_MAX_AGE_SECONDS - 60
    signed = signing.Signer.sign(invitation_signer(a.studio), f"{invitation.token}:{signing.b62_encode(old)}")
    response = client.get(f"{a.prefix}/invite/{signed}/")
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()


def test_expired_invitation_row_gets_a_clear_410(client, two_tenants):
    a, _ = two_tenants
    invitation = _invite(a)
    with tenant_context(a.studio):
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(f"{a.prefix}/invite/{_signed(a, invitation)}/")
    assert response.status_code == 410 and "expired" in response.content.decode()


def test_revoked_invitation_gets_a_clear_410(client, two_tenants):
    a, _ = two_tenants
    invitation = _invite(a)
    with tenant_context(a.studio):
        services.revoke_invitation(invitation=invitation, revoked_by=a.owner)
    url = f"{a.prefix}/invite/{_signed(a, invitation)}/"
    response = client.post(url, {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 410 and "withdrawn" in response.content.decode()
    assert not User.objects.filter(email=invitation.email).exists()


def test_accepting_twice_is_refused(two_tenants):
    a, _ = two_tenants
    invitation = _invite(a)
    user = User.objects.create_user(invitation.email, TEST_PASSWORD)
    with tenant_context(a.studio):
        services.accept_invitation(invitation=invitation, user=user)
        with pytest.raises(services.ActionRefused) as exc:
            services.accept_invitation(invitation=invitation, user=user)
    assert exc.value.status == 410


def test_an_existing_member_keeps_their_role(two_tenants):
    a, _ = two_tenants
    invitation = _invite(a, role=Role.MANAGER)
    user = add_member(a, "late@studio-a.example", Role.STAFF)
    with tenant_context(a.studio):
        Invitation.objects.filter(pk=invitation.pk).update(email=user.email)
        invitation.refresh_from_db()
        membership = services.accept_invitation(invitation=invitation, user=user)
    assert membership.role == Role.STAFF


def test_register_refuses_an_existing_account(two_tenants):
    a, b = two_tenants
    invitation = _invite(a, email=b.owner.email)
    with tenant_context(a.studio), pytest.raises(services.ActionRefused) as exc:
        services.register_from_invitation(invitation=invitation, full_name="X", password=NEW_PASSWORD)
    assert exc.value.status == 409
