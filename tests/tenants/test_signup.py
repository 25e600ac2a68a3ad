"""Self-serve sign-up (tenants/signup.py): a studio creates itself once its owner confirms the email; nothing
exists before that; addresses are checked (reserved, taken, retired, held by another's pending sign-up) and never
reused; abuse is limited (per address and per email, a honeypot); the trial's credits are granted once; the
owner lands on the getting-started checklist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from billing import credits
from tenants.context import platform_context, tenant_context
from tenants.models import Membership, RetiredSlug, Role, SignupRequest, Studio, User
from tests.conftest import TEST_PASSWORD, Tenant, make_tenant

PASSWORD = "a-long-and-unusual-passphrase"
LINK_RE = re.compile(r"https?://[^\s]+/signup/confirm/[^\s/]+/")


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    cache.clear()  # django-ratelimit's counters live in the default cache
    yield
    cache.clear()


def _form(**changes: str) -> dict[str, str]:
    return {
        "studio_name": "Studio Lumière",
        "slug": "lumiere-lyon",
        "full_name": "Camille Martin",
        "email": "camille@lumiere.example",
        "password": PASSWORD,
        "website": "",
        **changes,
    }


def _sign_up(client: Client, captured: Any, **changes: str) -> Any:
    ip = changes.pop("ip", "203.0.113.7")
    with captured(execute=True):
        return client.post("/signup/", _form(**changes), REMOTE_ADDR=ip)


def _link() -> str:
    """The path of the confirmation link in the latest email."""
    found = LINK_RE.search(mail.outbox[-1].body)
    assert found, mail.outbox[-1].body
    return "/" + found.group(0).split("://", 1)[1].split("/", 1)[1]


def _studios() -> list[str]:
    with platform_context():
        return list(Studio.objects.values_list("slug", flat=True))


@pytest.mark.django_db
def test_a_studio_signs_up_confirms_its_email_and_lands_on_its_checklist(
    client: Client, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SIGNUP_TRIAL_CREDITS = 40
    assert "Create your studio" in client.get("/").content.decode()  # the front door says where to start
    assert client.get("/signup/").status_code == 200
    response = _sign_up(client, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and "Check your email" in response.content.decode()
    # Nothing exists yet: no account, no studio; the password typed is not usable anywhere.
    assert not User.objects.filter(email="camille@lumiere.example").exists()
    assert "lumiere-lyon" not in _studios()
    assert client.post("/", {"username": "camille@lumiere.example", "password": PASSWORD}).status_code == 400
    assert client.get("/s/lumiere-lyon/").status_code == 404

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["camille@lumiere.example"]
    assert "Studio Lumière" in mail.outbox[0].subject
    link = _link()
    page = client.get(link)  # a mail scanner opening the link creates nothing
    assert page.status_code == 200 and "Create my studio" in page.content.decode()
    assert "lumiere-lyon" not in _studios()

    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == "/s/lumiere-lyon/?welcome=1"
    with platform_context():
        studio = Studio.objects.get(slug="lumiere-lyon")
        signup = SignupRequest.objects.get()
    assert studio.name == "Studio Lumière" and studio.contact_email == "camille@lumiere.example"
    assert signup.confirmed_at is not None and signup.password_hash == "" and signup.created_studio == studio
    user = User.objects.get(email="camille@lumiere.example")
    assert user.full_name == "Camille Martin" and user.check_password(PASSWORD)
    with tenant_context(studio):
        assert Membership.objects.get(user=user).role == Role.OWNER
        assert credits.balance() == 40  # the trial's grant, from the ledger
    dashboard = client.get(response["Location"]).content.decode()  # signed in already
    assert "Welcome! Get your studio ready" in dashboard
    for step in ("Make it yours", "Add your first client", "Publish your first template", "Set up payments"):
        assert step in dashboard
    assert "0 of 4 done" in dashboard

    assert client.post(link).status_code == 410  # a link works once
    client.logout()
    assert client.post("/", {"username": "camille@lumiere.example", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("admin", "is reserved"),
        ("support", "is reserved"),
        ("billing", "is reserved"),
        ("my-brand", "is reserved"),  # SIGNUP_RESERVED_SLUGS
        ("studio-a", "already taken"),  # a studio's
        ("-bad-", "lowercase letters, digits and hyphens"),
        ("Studio-A", "already taken"),  # lowered first: studio-a is studio A's
    ],
)
def test_addresses_that_cannot_be_taken_are_refused_with_the_reason(
    client: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Any, settings: Any, slug: str, message: str
) -> None:
    settings.SIGNUP_RESERVED_SLUGS = ["my-brand"]
    response = _sign_up(client, django_capture_on_commit_callbacks, slug=slug)
    assert response.status_code == 400 and message in response.content.decode()
    assert mail.outbox == [] and not SignupRequest.objects.exists()


@pytest.mark.django_db
def test_an_address_is_never_reused_after_its_studio_is_deleted_or_renamed(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    gone = make_tenant("old-studio", "Old Studio")
    renamed = make_tenant("first-name", "Renamed Studio")
    with platform_context():
        Studio.objects.get(pk=gone.studio.pk).delete()
        renamed.studio.slug = "second-name"
        renamed.studio.save()
        assert set(RetiredSlug.objects.values_list("slug", flat=True)) == {"old-studio", "first-name"}
    for slug in ("old-studio", "first-name"):
        response = _sign_up(client, django_capture_on_commit_callbacks, slug=slug)
        assert response.status_code == 400 and "already taken" in response.content.decode()


@pytest.mark.django_db
def test_a_pending_sign_up_holds_its_address_and_a_new_one_of_the_same_email_replaces_it(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    assert _sign_up(client, django_capture_on_commit_callbacks).status_code == 200
    first_link = _link()
    other = _sign_up(client, django_capture_on_commit_callbacks, email="someone@else.example")
    assert other.status_code == 400 and "already taken" in other.content.decode()
    # The same person signs up again (another address): the first link stops working.
    assert _sign_up(client, django_capture_on_commit_callbacks, slug="lumiere").status_code == 200
    assert client.get(first_link).status_code == 410
    assert client.post(_link()).status_code == 302
    assert "lumiere" in _studios() and "lumiere-lyon" not in _studios()


@pytest.mark.django_db
def test_expired_and_tampered_links_are_refused(
    client: Client, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    _sign_up(client, django_capture_on_commit_callbacks)
    link = _link()
    assert client.get(link[:-3] + "xx/").status_code == 404
    with platform_context():
        SignupRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(link)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert "lumiere-lyon" not in _studios()
    # An expired sign-up no longer holds its address.
    assert _sign_up(client, django_capture_on_commit_callbacks, email="other@studio.example").status_code == 200


@pytest.mark.django_db
def test_an_existing_account_gets_the_studio_and_keeps_its_password(
    client: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    response = _sign_up(client, django_capture_on_commit_callbacks, email=tenant_a.owner.email)
    assert response.status_code == 200 and "Check your email" in response.content.decode()  # same answer
    assert "You already have an account" in mail.outbox[-1].body
    assert client.post(_link()).status_code == 302
    tenant_a.owner.refresh_from_db()
    assert tenant_a.owner.check_password(TEST_PASSWORD) and not tenant_a.owner.check_password(PASSWORD)
    with platform_context():
        studios = set(Membership.objects.filter(user=tenant_a.owner).values_list("studio__slug", flat=True))
    assert studios == {"studio-a", "lumiere-lyon"}


@pytest.mark.django_db
def test_sign_up_abuse_is_limited(client: Client, django_capture_on_commit_callbacks: Any, settings: Any) -> None:
    settings.SIGNUP_ADDRESS_RATE = "3/1h"
    settings.SIGNUP_EMAIL_RATE = "2/1d"
    # The honeypot: answered like a success, nothing stored, nothing sent.
    bot = _sign_up(client, django_capture_on_commit_callbacks, website="http://spam.example")
    assert bot.status_code == 200 and "Check your email" in bot.content.decode()
    assert not SignupRequest.objects.exists() and mail.outbox == []
    # One email, asked for again and again from several addresses: two tries a day.
    for ip in ("198.51.100.1", "198.51.100.2"):
        assert _sign_up(client, django_capture_on_commit_callbacks, ip=ip, email="x@spam.example").status_code == 200
    limited = _sign_up(client, django_capture_on_commit_callbacks, ip="198.51.100.3", email="x@spam.example")
    assert limited.status_code == 429 and "Too many sign-ups" in limited.content.decode()
    # One address trying many emails: three tries an hour (the honeypot's counted too).
    blocked = _sign_up(client, django_capture_on_commit_callbacks, email="y@spam.example", slug="yyy")
    assert blocked.status_code == 200
    blocked = _sign_up(client, django_capture_on_commit_callbacks, email="z@spam.example", slug="zzz")
    assert blocked.status_code == 200
    blocked = _sign_up(client, django_capture_on_commit_callbacks, email="w@spam.example", slug="www-studio")
    assert blocked.status_code == 429
    assert len(mail.outbox) == 4  # the two of x@ and two of the address; nothing for the refused ones


@pytest.mark.django_db
def test_sign_up_can_be_closed(client: Client, settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.SIGNUP_ENABLED = False
    assert client.get("/signup/").status_code == 403
    assert _sign_up(client, django_capture_on_commit_callbacks).status_code == 403
    assert "Create your studio" not in client.get("/").content.decode()
    assert not SignupRequest.objects.exists()


@pytest.mark.django_db
def test_bad_input_gets_field_messages_not_a_500(client: Client, django_capture_on_commit_callbacks: Any) -> None:
    response = _sign_up(client, django_capture_on_commit_callbacks, password="password", email="not-an-email")
    html = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid email address" in html and "too common" in html
    response = _sign_up(client, django_capture_on_commit_callbacks, studio_name="   ", full_name="")
    assert response.status_code == 400 and "Give your studio" in response.content.decode()
    assert not SignupRequest.objects.exists()
