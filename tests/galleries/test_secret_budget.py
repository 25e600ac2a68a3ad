"""Guessing a gallery's password or PIN from many addresses (issue 13, finding 5): a budget of wrong guesses per
gallery across every address as well as per address (an IPv6 /64 counting as one), counted with
django-ratelimit; when it is spent the gallery locks in the database, every new visitor is refused (423) even
with the right secret, the studio's owners and managers are emailed, and only an owner unlocks it (page or API),
which starts the counts again. New PINs are 6 to 8 digits; older, shorter ones still work and are flagged."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connections
from django.test import Client

from galleries import services
from galleries.models import Gallery
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import Tenant, add_member
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    _fresh_cache,
    make_scene,
    private_storage_fixture,
    text,
)

pytestmark = pytest.mark.usefixtures("private_storage")

GOOD_PIN = "482193"
LOCKED = "This gallery is locked"


def _row(tenant: Tenant, gallery: Gallery) -> Gallery:
    with tenant_context(tenant.studio):
        return Gallery.objects.select_related("secret_unlocked_by").get(pk=gallery.pk)


def _guess_pin(url: str, pin: str, address: str, browser: Client | None = None) -> Any:
    return (browser or Client()).post(f"{url}pin/", {"pin": pin}, REMOTE_ADDR=address)


def _api(tenant: Tenant, path: str) -> str:
    return f"{tenant.prefix}/api/{path}"


def _signed_in(tenant: Tenant, role: str) -> Client:
    browser = Client()
    browser.force_login(add_member(tenant, f"{role}@{tenant.studio.slug}.example", role))
    return browser


@pytest.mark.django_db
def test_wrong_pins_from_many_addresses_lock_the_gallery_for_everyone(
    two_tenants: Any, settings: Any, django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    """Issue 13, finding 5: from many addresses, each under its own limit, the wrong PINs add up per gallery; when
    the gallery's budget is spent it locks (in the database), the right PIN from a fresh address is refused with
    the locked page, and the studio's owners and managers (not staff) get one email with the unlock link."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "3/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "8/30d"
    add_member(a, "manager@studio-a.example", Role.MANAGER)
    add_member(a, "staff@studio-a.example", Role.STAFF)
    scene = make_scene(a, 1, pin=GOOD_PIN)
    statuses = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(6):  # 6 addresses, 2 wrong PINs each: never past the per-address limit
            for guess in ("000000", "111111"):
                statuses.append(_guess_pin(scene.url, guess, f"198.51.100.{n + 1}").status_code)
    assert statuses[:7] == [403] * 7
    assert statuses[7:] == [423] * 5  # the 8th wrong one spent the budget and locked it
    assert _row(a, scene.gallery).secret_locked_at is not None

    fresh = _guess_pin(scene.url, GOOD_PIN, "203.0.113.99")
    assert fresh.status_code == 423
    page = text(fresh)
    assert LOCKED in page and "contact them" in page and "Studio A" in page
    assert Client().get(f"{scene.url}pin/", REMOTE_ADDR="203.0.113.98").status_code == 423

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert sorted(mail.to) == ["manager@studio-a.example", "owner@studio-a.example"]
    assert "was locked" in mail.subject and "Spring portraits" in mail.subject
    assert f"/galleries/{scene.gallery.pk}/" in mail.body and "too many wrong PINs" in mail.body
    assert GOOD_PIN not in mail.body


@pytest.mark.django_db
def test_the_lock_warning_goes_to_each_reader_in_their_own_language(
    two_tenants: Any, settings: Any, django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    """The guesses come from a client's page in the client's language; the warning goes to the owners and managers
    in theirs (User.language): one email per language."""
    from tenants.models import User

    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "10/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "2/30d"
    add_member(a, "manager@studio-a.example", Role.MANAGER)
    User.objects.filter(email="manager@studio-a.example").update(language="fr")
    scene = make_scene(a, 1, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(1, 4):
            Client().post(f"{scene.url}unlock/?lang=zh-hans", {"password": "nope"}, REMOTE_ADDR=f"192.0.2.{n}")
    by_reader = {tuple(mail.to): mail for mail in mailoutbox}
    assert sorted(by_reader) == [("manager@studio-a.example",), ("owner@studio-a.example",)]
    english, french = by_reader[("owner@studio-a.example",)], by_reader[("manager@studio-a.example",)]
    assert "too many wrong passwords" in english.body and "(2 in 30 days" in english.body
    assert english.subject == "Studio A: the gallery “Spring portraits” was locked"
    assert french.subject.startswith("Studio A") and "verrouillée" in french.subject
    assert "30\u00a0jours" in french.body or "30 jours" in french.body
    assert "too many" not in french.body and "密码" not in french.body + english.body


@pytest.mark.django_db
def test_a_password_has_the_same_budget(
    two_tenants: Any, settings: Any, django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    """Issue 13, finding 5: wrong passwords from many addresses lock the gallery too; a new visitor then gets the
    locked page (423) instead of the password form, even with the right password."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "10/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "4/30d"
    scene = make_scene(a, 1, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            Client().post(f"{scene.url}unlock/", {"password": "nope"}, REMOTE_ADDR=f"192.0.2.{n}").status_code
            for n in range(1, 6)
        ]
    assert answers == [403, 403, 403, 423, 423]
    right = Client().post(f"{scene.url}unlock/", {"password": PASSWORD}, REMOTE_ADDR="192.0.2.77")
    assert right.status_code == 423 and LOCKED in text(right)
    page = Client().get(scene.url, REMOTE_ADDR="192.0.2.78")
    assert page.status_code == 423 and LOCKED in text(page) and "Spring portraits" not in text(page)
    assert len(mailoutbox) == 1 and "too many wrong passwords" in mailoutbox[0].body


@pytest.mark.django_db(transaction=True)
def test_concurrent_guesses_from_many_addresses_never_pass_the_budget(two_tenants: Any, settings: Any) -> None:
    """Issue 13, finding 5, with real concurrency: 16 addresses guess at once, 3 wrong PINs each (under the
    per-address limit). A guess is counted before it is checked, so exactly the budget's wrong guesses are
    checked (7 answered 403, the 8th locks), every other one is refused (423), and the studio is emailed once."""
    from django.core import mail

    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "5/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "8/30d"
    scene = make_scene(a, 1, pin=GOOD_PIN)
    mail.outbox = []

    def guesser(n: int) -> list[int]:
        browser = Client()
        try:
            return [_guess_pin(scene.url, f"{n:02d}{i:04d}", f"10.1.{n}.1", browser).status_code for i in range(3)]
        finally:
            connections.close_all()  # this thread's connection (the test database is dropped afterwards)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [status for statuses in pool.map(guesser, range(16)) for status in statuses]
    assert len(answers) == 48
    assert answers.count(403) == 7
    assert answers.count(423) == 41
    assert _row(a, scene.gallery).secret_locked_at is not None
    assert len(mail.outbox) == 1
    assert _guess_pin(scene.url, GOOD_PIN, "10.2.0.1").status_code == 423


@pytest.mark.django_db
def test_ipv6_addresses_of_one_64_share_a_budget(two_tenants: Any, settings: Any) -> None:
    """Issue 13, finding 5: an IPv6 /64 is one guesser (its 2^64 addresses can't buy more guesses); another /64
    is another guesser; an IPv4-mapped IPv6 address counts as its IPv4 address."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "3/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "20/30d"
    scene = make_scene(a, 1, pin=GOOD_PIN)
    assert _guess_pin(scene.url, "000001", "2001:db8:1:2::1").status_code == 403
    assert _guess_pin(scene.url, "000002", "2001:db8:1:2:ffff::9").status_code == 403
    third = _guess_pin(scene.url, "000003", "2001:db8:1:2:abcd:1234:5678:9abc")
    assert third.status_code == 429 and re.search(r"Too many attempts, try again in \d+ minutes?\.", text(third))
    assert int(third["Retry-After"]) > 0
    assert _guess_pin(scene.url, GOOD_PIN, "2001:db8:1:2::42").status_code == 429  # right or not, it waits
    assert _guess_pin(scene.url, "000004", "2001:db8:1:3::1").status_code == 403  # another /64
    # The same IPv4 address, written plainly and mapped into IPv6, is one guesser.
    assert _guess_pin(scene.url, "000005", "198.51.100.7").status_code == 403
    assert _guess_pin(scene.url, "000006", "::ffff:198.51.100.7").status_code == 403
    assert _guess_pin(scene.url, "000007", "198.51.100.7").status_code == 429
    assert _guess_pin(scene.url, GOOD_PIN, "198.51.100.8").status_code == 302


@pytest.mark.django_db
def test_the_per_address_throttle_still_works_and_a_right_pin_gives_its_guess_back(
    two_tenants: Any, settings: Any
) -> None:
    """Issue 13, finding 5: per address, wrong guesses past GALLERY_SECRET_ADDRESS_RATE wait (429) while other
    addresses are not slowed; a right PIN doesn't use up the address's guesses (it gives its guess back)."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "2/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "20/30d"
    scene = make_scene(a, 1, pin=GOOD_PIN)
    for _ in range(3):  # three browsers behind one address type the right PIN: none is counted
        assert _guess_pin(scene.url, GOOD_PIN, "192.0.2.10").status_code == 302
    assert _guess_pin(scene.url, "999999", "192.0.2.10").status_code == 403
    assert _guess_pin(scene.url, "999998", "192.0.2.10").status_code == 429
    assert _guess_pin(scene.url, GOOD_PIN, "192.0.2.10").status_code == 429
    assert _guess_pin(scene.url, GOOD_PIN, "192.0.2.11").status_code == 302
    assert _row(a, scene.gallery).secret_locked_at is None


@pytest.mark.django_db
def test_only_an_owner_unlocks_and_then_the_right_pin_works_again(
    two_tenants: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 13, finding 5: the studio's gallery page says the gallery is locked; managers, staff, photographers
    and API keys can't unlock it (403, page and API); an owner can (page), which records who and when, and
    starts every count again: the right PIN works from anywhere, even the address that was waiting."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "2/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "3/30d"
    scene = make_scene(a, 1, pin=GOOD_PIN)
    with django_capture_on_commit_callbacks(execute=True):
        assert _guess_pin(scene.url, "000000", "192.0.2.1").status_code == 403
        assert _guess_pin(scene.url, "000001", "192.0.2.1").status_code == 429  # this address waits
        assert _guess_pin(scene.url, "000002", "192.0.2.2").status_code == 423  # the gallery's 3rd: locked
    assert _row(a, scene.gallery).secret_locked_at is not None
    page = f"{a.prefix}/galleries/{scene.gallery.pk}/"
    api = _api(a, f"galleries/{scene.gallery.pk}/unlock/")

    for role in (Role.MANAGER, Role.STAFF, Role.PHOTOGRAPHER):
        browser = _signed_in(a, role)
        detail = text(browser.get(page))
        assert "Locked after too many wrong passwords or PINs" in detail and 'id="unlock-gallery"' not in detail
        refused = browser.post(f"{page}unlock/")
        assert refused.status_code == 403 and "Only the studio's owners" in text(refused)
        assert browser.post(api).status_code == 403
    from tenants.api_keys import create_api_key

    with tenant_context(a.studio):
        _, raw = create_api_key(name="shop", created_by=a.owner)
    assert Client().post(api, HTTP_AUTHORIZATION=f"Api-Key {raw}").status_code == 403
    assert _row(a, scene.gallery).secret_locked_at is not None

    owner = Client()
    owner.force_login(a.owner)
    assert 'id="unlock-gallery"' in text(owner.get(page))
    unlocked = owner.post(f"{page}unlock/")
    assert unlocked.status_code == 302 and unlocked["Location"].endswith("#access")
    row = _row(a, scene.gallery)
    assert row.secret_locked_at is None and row.secret_unlocked_at is not None
    assert row.secret_unlocked_by == a.owner
    assert "Not locked" in text(owner.get(page)) and a.owner.email in text(owner.get(page))
    assert owner.post(f"{page}unlock/").status_code == 409  # not locked any more

    assert _guess_pin(scene.url, GOOD_PIN, "192.0.2.1").status_code == 302
    assert _guess_pin(scene.url, GOOD_PIN, "203.0.113.5").status_code == 302


@pytest.mark.django_db
def test_an_owner_unlocks_through_the_api(two_tenants: Any, client_a: Client) -> None:
    """Issue 13, finding 5: the API shows the lock and an owner (signed in) unlocks it; 409 when not locked."""
    a, _ = two_tenants
    scene = make_scene(a, 1, pin=GOOD_PIN)
    with tenant_context(a.studio):
        services.lock_secrets(gallery=scene.gallery, purpose="pin")
    detail = client_a.get(_api(a, f"galleries/{scene.gallery.pk}/")).json()
    assert detail["secret_locked_at"] is not None and detail["secret_unlocked_by"] is None
    answer = client_a.post(_api(a, f"galleries/{scene.gallery.pk}/unlock/"))
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["secret_locked_at"] is None and body["secret_unlocked_by"] == a.owner.email
    assert client_a.post(_api(a, f"galleries/{scene.gallery.pk}/unlock/")).status_code == 409


@pytest.mark.django_db
def test_another_studio_cannot_unlock_or_even_find_the_gallery(two_tenants: Any) -> None:
    """Issue 13, finding 5, tenancy: studio B's owner unlocking studio A's gallery gets 404 (page and API) at B's
    own address, and A's gallery stays locked."""
    a, b = two_tenants
    scene = make_scene(a, 1, pin=GOOD_PIN)
    with tenant_context(a.studio):
        services.lock_secrets(gallery=scene.gallery, purpose="pin")
    other = Client()
    other.force_login(b.owner)
    assert other.post(f"{b.prefix}/galleries/{scene.gallery.pk}/unlock/").status_code == 404
    assert other.post(_api(b, f"galleries/{scene.gallery.pk}/unlock/")).status_code == 404
    assert other.post(f"{a.prefix}/galleries/{scene.gallery.pk}/unlock/").status_code in (302, 403, 404)
    assert _row(a, scene.gallery).secret_locked_at is not None


@pytest.mark.django_db
def test_new_pins_have_six_digits_and_older_short_ones_still_work_but_are_flagged(
    two_tenants: Any, client_a: Client
) -> None:
    """Issue 13, finding 5: a new PIN has 6 to 8 digits (page, API and service say so); a 4-digit PIN set before
    still opens the downloads (the lock bounds the guessing) and the studio's page asks for a new one."""
    a, _ = two_tenants
    scene = make_scene(a, 1, pin="4821")  # set before PINs had to be 6 digits: its length isn't known
    page = f"{a.prefix}/galleries/{scene.gallery.pk}/"
    assert _guess_pin(scene.url, "4821", "192.0.2.50").status_code == 302
    assert 'id="pin-short"' in text(client_a.get(page))
    refused = client_a.post(f"{page}pin/", {"action": "set", "pin": "12345"})
    assert refused.status_code == 400 and "6 to 8 digits" in text(refused)
    answer = client_a.post(_api(a, f"galleries/{scene.gallery.pk}/pin/"), {"pin": "12345"}, "application/json")
    assert answer.status_code == 400 and "6 to 8 digits" in answer.content.decode()
    with tenant_context(a.studio), pytest.raises(services.GalleryError, match="6 to 8 digits"):
        services.set_pin(gallery=scene.gallery, pin="1234")
    assert client_a.post(f"{page}pin/", {"action": "set", "pin": "123456"}).status_code == 302
    assert 'id="pin-short"' not in text(client_a.get(page))
    assert client_a.get(_api(a, f"galleries/{scene.gallery.pk}/")).json()["pin_may_be_short"] is False
    short = client_a.post(
        _api(a, f"galleries/{scene.gallery.pk}/password/"), {"password": "seven77"}, "application/json"
    )
    assert short.status_code == 400


@pytest.mark.django_db
def test_a_new_secret_starts_its_count_again_but_does_not_unlock(two_tenants: Any, settings: Any) -> None:
    """Issue 13, finding 5: the counts belong to the secret they guess (a new PIN starts them again, so guesses at
    an old PIN never count against the new one), but only an owner's unlock opens a locked gallery."""
    a, _ = two_tenants
    settings.GALLERY_SECRET_ADDRESS_RATE = "2/15m"
    settings.GALLERY_SECRET_GALLERY_RATE = "20/30d"
    scene = make_scene(a, 1, pin=GOOD_PIN)
    assert _guess_pin(scene.url, "000000", "192.0.2.20").status_code == 403
    assert _guess_pin(scene.url, "000001", "192.0.2.20").status_code == 429
    with tenant_context(a.studio):
        Gallery.objects.filter(pk=scene.gallery.pk).update(pin_hash=make_password("13572468"))
    assert _guess_pin(scene.url, "13572468", "192.0.2.20").status_code == 302
    with tenant_context(a.studio):
        services.lock_secrets(gallery=scene.gallery, purpose="pin")
        services.set_pin(gallery=scene.gallery, pin="24681357")
    assert _guess_pin(scene.url, "24681357", "192.0.2.21").status_code == 423
