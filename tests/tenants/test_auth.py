"""Signing in and out, inside a studio and on the platform; throttling; password resets."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail

from tenants.models import Role, User
from tests.conftest import SITE_PASSWORD_HASHERS, TEST_PASSWORD, add_member

pytestmark = pytest.mark.django_db


def _login(client, prefix: str, email: str, password: str, **extra):
    return client.post(f"{prefix}/accounts/login/", {"username": email, "password": password, **extra})


def _signed_in_as(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


# --- Studio sign-in -------------------------------------------------------------------------------------------


def test_login_page_is_branded_with_the_studio(two_tenants):
    a, b = two_tenants
    response = _get(a.prefix + "/accounts/login/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Studio A" in body and 'data-css-brand="#aa3366"' in body  # --brand, by static/js/css-vars.js
    assert "Studio B" not in body
    assert 'name="username"' in body and 'type="email"' in body
    assert f'action="{a.prefix}/accounts/login/"' in body


def _get(path: str):
    from django.test import Client

    return Client().get(path)


def test_member_signs_in_and_lands_on_the_dashboard(client, two_tenants):
    a, _ = two_tenants
    response = _login(client, a.prefix, "OWNER@studio-a.example", TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == f"{a.prefix}/"
    assert _signed_in_as(client) == a.owner.pk
    assert client.get(f"{a.prefix}/").status_code == 200


def test_passwords_are_hashed_with_argon2(db, settings):
    settings.PASSWORD_HASHERS = SITE_PASSWORD_HASHERS  # the site's (the suite hashes with MD5: tests/conftest.py)
    assert SITE_PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    user = User.objects.create_user("argon@studio.example", TEST_PASSWORD)
    assert User.objects.get(pk=user.pk).password.startswith("argon2")
    assert User.objects.get(pk=user.pk).check_password(TEST_PASSWORD)


def test_wrong_password_is_refused_with_a_clear_message(client, two_tenants):
    a, _ = two_tenants
    response = _login(client, a.prefix, a.owner.email, "not-the-password")
    assert response.status_code == 400
    assert "don&#x27;t match an account" in response.content.decode()
    assert _signed_in_as(client) is None


def test_next_brings_the_member_back_to_the_page_asked_for(client, two_tenants):
    a, _ = two_tenants
    response = client.get(f"{a.prefix}/members/")
    assert response.status_code == 302
    assert response["Location"] == f"{a.prefix}/accounts/login/?next={a.prefix}/members/"
    response = _login(client, a.prefix, a.owner.email, TEST_PASSWORD, next=f"{a.prefix}/members/")
    assert response["Location"] == f"{a.prefix}/members/"


def test_next_to_another_host_is_ignored(client, two_tenants):
    a, _ = two_tenants
    response = _login(client, a.prefix, a.owner.email, TEST_PASSWORD, next="https://evil.example/")
    assert response["Location"] == f"{a.prefix}/"


def test_account_of_another_studio_is_told_it_has_no_access(client, two_tenants):
    a, b = two_tenants
    response = _login(client, a.prefix, b.owner.email, TEST_PASSWORD)
    assert response.status_code == 403
    body = response.content.decode()
    assert "No access to Studio A" in body and b.owner.email in body
    # Nothing about the studio's data: not its members, not the other studio either.
    assert a.owner.email not in body and "Studio B" not in body
    assert _signed_in_as(client) is None


def test_platform_superuser_is_not_studio_staff(client, two_tenants):
    a, _ = two_tenants
    User.objects.create_superuser("root@platform.example", TEST_PASSWORD)
    response = _login(client, a.prefix, "root@platform.example", TEST_PASSWORD)
    assert response.status_code == 403
    assert _signed_in_as(client) is None


def test_signed_in_member_visiting_login_goes_to_the_dashboard(client_a, tenant_a):
    response = client_a.get(f"{tenant_a.prefix}/accounts/login/")
    assert response.status_code == 302 and response["Location"] == f"{tenant_a.prefix}/"


def test_logout_is_a_post_and_returns_to_the_studio_login(client_a, tenant_a):
    assert client_a.get(f"{tenant_a.prefix}/accounts/logout/").status_code == 405
    assert _signed_in_as(client_a) == tenant_a.owner.pk
    response = client_a.post(f"{tenant_a.prefix}/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == f"{tenant_a.prefix}/accounts/login/"
    assert _signed_in_as(client_a) is None


# --- Throttling (django-axes) ---------------------------------------------------------------------------------


def test_repeated_failures_lock_the_account_out_with_a_clear_page(client, two_tenants):
    a, _ = two_tenants
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(client, a.prefix, a.owner.email, "wrong-password").status_code == 400
    locked = _login(client, a.prefix, a.owner.email, "wrong-password")
    assert locked.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    body = locked.content.decode()
    assert "Too many failed sign-in attempts" in body and a.owner.email in body
    assert f"after {limit} failed attempts" in body
    assert "try again in" in body and "minutes" in body

    # While locked out, even the right password is refused.
    again = _login(client, a.prefix, a.owner.email, TEST_PASSWORD)
    assert again.status_code == 429
    assert _signed_in_as(client) is None


def test_lockout_is_per_account_and_address(client, two_tenants):
    a, _ = two_tenants
    colleague = add_member(a, "colleague@studio-a.example", Role.STAFF)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, a.prefix, a.owner.email, "wrong-password")
    response = _login(client, a.prefix, colleague.email, TEST_PASSWORD)
    assert response.status_code == 302
    assert _signed_in_as(client) == colleague.pk


def test_success_resets_the_failure_count(client, two_tenants):
    a, _ = two_tenants
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        _login(client, a.prefix, a.owner.email, "wrong-password")
    assert _login(client, a.prefix, a.owner.email, TEST_PASSWORD).status_code == 302
    client.post(f"{a.prefix}/accounts/logout/")
    for _ in range(limit - 1):
        assert _login(client, a.prefix, a.owner.email, "wrong-password").status_code == 400


def test_platform_login_is_throttled_too(client, two_tenants):
    a, _ = two_tenants
    responses = [
        client.post("/", {"username": a.owner.email, "password": "wrong"}) for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert [r.status_code for r in responses[:-1]] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert responses[-1].status_code == 429
    assert "Too many failed sign-in attempts" in responses[-1].content.decode()


# --- Password reset -------------------------------------------------------------------------------------------


def _reset_link(message: mail.EmailMessage) -> str:
    match = re.search(r"http://testserver(/\S+/accounts/password-reset/\S+/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_password_reset_round_trip_inside_the_studio(client, two_tenants, django_capture_on_commit_callbacks):
    a, _ = two_tenants
    assert client.get(f"{a.prefix}/accounts/password-reset/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{a.prefix}/accounts/password-reset/", {"email": a.owner.email})
    assert response.status_code == 302
    assert response["Location"] == f"{a.prefix}/accounts/password-reset/done/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [a.owner.email]
    assert "Studio A" in message.subject
    link = _reset_link(message)
    assert link.startswith(f"{a.prefix}/accounts/password-reset/")

    response = client.get(link)  # Django swaps the token into the session and redirects
    assert response.status_code == 302
    set_password_url = response["Location"]
    page = client.get(set_password_url)
    assert page.status_code == 200 and page.context["validlink"]

    weak = client.post(set_password_url, {"new_password1": "12345", "new_password2": "12345"})
    assert weak.status_code == 400 and weak.context["form"].errors

    new_password = "a-brand-new-secret-42"
    done = client.post(set_password_url, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert done["Location"] == f"{a.prefix}/accounts/password-reset/complete/"
    assert client.get(done["Location"]).status_code == 200
    assert User.objects.get(pk=a.owner.pk).check_password(new_password)

    # The link works once.
    used = client.get(link, follow=True)
    assert used.status_code == 400 and used.context["validlink"] is False


def test_password_reset_only_mails_members_and_never_says_who_exists(
    client, two_tenants, django_capture_on_commit_callbacks
):
    a, b = two_tenants
    for email in (b.owner.email, "nobody@nowhere.example"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"{a.prefix}/accounts/password-reset/", {"email": email})
        assert response.status_code == 302
        assert response["Location"] == f"{a.prefix}/accounts/password-reset/done/"
    assert mail.outbox == []


def test_password_reset_mail_is_sent_only_when_the_request_commits(
    client, two_tenants, django_capture_on_commit_callbacks
):
    a, _ = two_tenants
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(f"{a.prefix}/accounts/password-reset/", {"email": a.owner.email})
    assert len(callbacks) == 1 and mail.outbox == []


def test_tampered_reset_link_is_refused(client, two_tenants):
    a, _ = two_tenants
    response = client.get(f"{a.prefix}/accounts/password-reset/MQ/not-a-token/", follow=True)
    assert response.status_code == 400
    assert response.context["validlink"] is False
    assert "This reset link can't be used" in response.content.decode()


# --- The platform's front door --------------------------------------------------------------------------------


def test_platform_home_shows_a_sign_in_form(client, two_tenants):
    response = client.get("/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()


def test_platform_sign_in_with_one_studio_goes_straight_there(client, two_tenants):
    a, _ = two_tenants
    response = client.post("/", {"username": a.owner.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/s/studio-a/"
    assert client.get(response["Location"]).status_code == 200


def test_platform_sign_in_with_several_studios_shows_a_chooser(client, two_tenants):
    a, b = two_tenants
    from tenants.context import tenant_context
    from tenants.models import Membership

    with tenant_context(b.studio):
        Membership.objects.create(user=a.owner, role=Role.PHOTOGRAPHER)
    response = client.post("/", {"username": a.owner.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/").content.decode()
    assert 'href="/s/studio-a/"' in page and 'href="/s/studio-b/"' in page
    assert "Photographer" in page and "Owner" in page
    assert "/admin/" not in page


def test_platform_chooser_skips_suspended_studios(client, two_tenants):
    a, b = two_tenants
    from tenants.context import tenant_context
    from tenants.models import Membership, Studio

    with tenant_context(b.studio):
        Membership.objects.create(user=a.owner, role=Role.STAFF)
    Studio.objects.filter(pk=b.studio.pk).update(status=Studio.Status.SUSPENDED)
    response = client.post("/", {"username": a.owner.email, "password": TEST_PASSWORD})
    assert response["Location"] == "/s/studio-a/"


def test_platform_superuser_gets_the_admin_link(client, two_tenants):
    User.objects.create_superuser("root@platform.example", TEST_PASSWORD)
    response = client.post("/", {"username": "root@platform.example", "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/").content.decode()
    assert 'href="/admin/"' in page
    assert "not a member of any studio" in page


def test_platform_sign_in_with_a_wrong_password(client, two_tenants):
    a, _ = two_tenants
    response = client.post("/", {"username": a.owner.email, "password": "nope"})
    assert response.status_code == 400
    assert "don&#x27;t match an account" in response.content.decode()
    assert _signed_in_as(client) is None


def test_platform_logout(client_a):
    response = client_a.post("/accounts/logout/")
    assert response.status_code == 302
    assert _signed_in_as(client_a) is None


def test_platform_password_reset_mails_any_active_account(client, two_tenants, django_capture_on_commit_callbacks):
    _, b = two_tenants
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password-reset/", {"email": b.owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "http://testserver/accounts/password-reset/" in mail.outbox[0].body


def test_platform_sign_in_follows_a_safe_next_only(client, two_tenants):
    a, _ = two_tenants
    response = client.post("/accounts/login/?next=/api/", {"username": a.owner.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/api/"
    client.post("/accounts/logout/")
    response = client.post("/", {"username": a.owner.email, "password": TEST_PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/s/studio-a/"
