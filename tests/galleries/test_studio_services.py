"""The studio's gallery actions (galleries/services.py): making galleries from picks or chosen portraits, the
checks on portraits, access (password, PIN, expiry, revoking), sharing by email, the expiry reminders across
studios, entitlements, and the statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.utils import timezone

from galleries import selectors, services
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait, GallerySettings
from generation.models import Portrait, RenderRun
from tenants.context import tenant_context
from tests.clients.factories import make_client
from tests.conftest import Tenant
from tests.galleries.factories import run_with_portraits, studio_double, use_private_storage

pytestmark = pytest.mark.django_db


@dataclass
class Setup:
    tenant: Tenant
    client: Any
    double: Any
    run: RenderRun

    def portraits(self) -> list[Portrait]:
        return list(Portrait.objects.filter(run=self.run).order_by("rank"))


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    use_private_storage(settings, tmp_path / "private-media")


def make_setup(tenant: Tenant, **run_kwargs: Any) -> Setup:
    with tenant_context(tenant.studio):
        client = make_client(tenant)
        double = studio_double(tenant, client=client)
        run = run_with_portraits(tenant, double=double, **run_kwargs)
    return Setup(tenant, client, double, run)


@pytest.fixture
def a(tenant_a: Tenant) -> Setup:
    return make_setup(tenant_a, picks=2, others=2, hidden_picks=1)


def refused(call: Any, status: int, *words: str) -> services.GalleryError:
    with pytest.raises(services.GalleryError) as info:
        call()
    assert info.value.status == status, info.value.message
    for word in words:
        assert word in info.value.message
    return info.value


# --- Making galleries -----------------------------------------------------------------------------------------


def test_a_gallery_from_a_run_shows_its_shown_picks_by_default(a: Setup):
    with tenant_context(a.tenant.studio):
        picks = [p for p in a.portraits() if p.is_pick and not p.is_hidden]
        before = timezone.now()
        gallery = services.create_gallery(client=a.client, run=a.run, user=a.tenant.owner)
        entries = list(GalleryPortrait.objects.filter(gallery=gallery).order_by("position"))
        assert [e.portrait_id for e in entries] == [p.pk for p in picks]
        assert [e.position for e in entries] == [0, 1]
        assert gallery.run_id == a.run.pk and gallery.created_by == a.tenant.owner
        assert gallery.title == f"Portraits of {a.client.name}"
        # The studio's defaults: 30 days, "more like me" allowed, the download limit of the settings.
        assert before + timedelta(days=30) <= gallery.expires_at <= timezone.now() + timedelta(days=30)
        assert gallery.allow_more_like_me is True and gallery.download_limit is None
        assert selectors.gallery_status(gallery) == selectors.STATUS_DRAFT
        assert not gallery.has_password and not gallery.has_pin


def test_chosen_portraits_replace_the_picks_in_their_order_without_repeats(a: Setup):
    with tenant_context(a.tenant.studio):
        shown = [p for p in a.portraits() if not p.is_hidden]
        chosen = [shown[3].pk, shown[0], shown[3].pk]
        gallery = services.create_gallery(client=a.client, run=a.run, portraits=chosen, title="  Best   of  ")
        assert gallery.title == "Best of"
        assert list(gallery.entries.order_by("position").values_list("portrait_id", flat=True)) == [
            shown[3].pk,
            shown[0].pk,
        ]
        empty = services.create_gallery(client=a.client, portraits=[])
        assert empty.entries.count() == 0


def test_portraits_of_another_client_hidden_unknown_or_without_preview_are_refused(a: Setup, tenant_b: Tenant):
    other = make_setup(a.tenant, picks=1, others=0)
    b = make_setup(tenant_b, picks=1, others=0)
    with tenant_context(tenant_b.studio):
        b_portrait = b.portraits()[0].pk
    with tenant_context(a.tenant.studio):
        hidden = next(p for p in a.portraits() if p.is_hidden)
        theirs = other.portraits()[0]
        refused(
            lambda: services.create_gallery(client=a.client, portraits=[theirs]), 400, f"#{theirs.pk}", "another client"
        )
        refused(lambda: services.create_gallery(client=a.client, portraits=[hidden.pk]), 400, f"#{hidden.pk}", "hidden")
        refused(lambda: services.create_gallery(client=a.client, portraits=[b_portrait]), 400, "doesn't exist")
        refused(lambda: services.create_gallery(client=a.client, portraits=["x"]), 400)
        test_render = Portrait.objects.create(double=a.double, recipe={}, rank=1)  # a double's test render
        refused(lambda: services.create_gallery(client=a.client, portraits=[test_render]), 400, "preview")
        # A run of another client; a run without picks.
        refused(lambda: services.create_gallery(client=a.client, run=other.run), 400, "another client")
        Portrait.objects.filter(run=a.run).update(is_pick=False)
        refused(lambda: services.create_gallery(client=a.client, run=a.run), 409, "no picks")
        refused(lambda: services.create_gallery(client=a.client, title="x" * 151, portraits=[]), 400, "too long")
        assert Gallery.objects.count() == 0


def test_expiry_and_more_like_me_default_from_the_studio_settings(a: Setup):
    with tenant_context(a.tenant.studio):
        settings_row = services.gallery_settings()
        assert (settings_row.expiry_days, settings_row.reminder_days, settings_row.download_limit) == (30, 3, 5)
        assert services.gallery_settings().pk == settings_row.pk  # one row per studio
        services.update_settings(expiry_days=7, allow_more_like_me=False)
        gallery = services.create_gallery(client=a.client, run=a.run)
        assert timezone.now() + timedelta(days=6) < gallery.expires_at <= timezone.now() + timedelta(days=7)
        assert gallery.allow_more_like_me is False
        services.update_settings(expiry_days=0)
        assert services.create_gallery(client=a.client, run=a.run).expires_at is None
        services.update_settings(expiry_days=7)
        assert services.create_gallery(client=a.client, run=a.run, never_expires=True).expires_at is None
        chosen = timezone.now() + timedelta(days=3)
        assert services.create_gallery(client=a.client, run=a.run, expires_at=chosen).expires_at == chosen
        refused(
            lambda: services.create_gallery(client=a.client, run=a.run, expires_at=timezone.now() - timedelta(hours=1)),
            400,
            "future",
        )
        refused(lambda: services.update_settings(expiry_days=1000), 400)
        refused(lambda: services.update_settings(reminder_days=-1), 400)
        refused(lambda: services.update_settings(download_limit="many"), 400)
        assert GallerySettings.objects.count() == 1


def test_add_and_remove_portraits(a: Setup):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        shown = [p for p in a.portraits() if not p.is_hidden]
        added = services.add_portraits(gallery=gallery, portraits=[shown[0].pk, shown[2].pk, shown[3]])
        assert [e.portrait_id for e in added] == [shown[2].pk, shown[3].pk]  # the pick already there stays
        order = list(gallery.entries.order_by("position").values_list("portrait_id", "position"))
        assert order == [(shown[0].pk, 0), (shown[1].pk, 1), (shown[2].pk, 2), (shown[3].pk, 3)]
        hidden = next(p for p in a.portraits() if p.is_hidden)
        refused(lambda: services.add_portraits(gallery=gallery, portraits=[hidden]), 400, "hidden")
        refused(lambda: services.add_portraits(gallery=gallery, portraits=[]), 400)
        services.remove_portrait(gallery=gallery, portrait=shown[1])
        assert list(gallery.entries.values_list("portrait_id", flat=True).order_by("position")) == [
            shown[0].pk,
            shown[2].pk,
            shown[3].pk,
        ]
        refused(lambda: services.remove_portrait(gallery=gallery, portrait=shown[1]), 404)
        services.reorder(gallery=gallery, portrait_ids=[shown[3].pk, shown[0].pk, shown[2].pk])
        assert list(gallery.entries.order_by("position").values_list("portrait_id", flat=True)) == [
            shown[3].pk,
            shown[0].pk,
            shown[2].pk,
        ]
        refused(lambda: services.reorder(gallery=gallery, portrait_ids=[shown[3].pk]), 400)


def test_passwords_and_pins_are_stored_hashed_never_in_clear(a: Setup):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run, password="sunset-42", pin="246813")
        row = Gallery.objects.get(pk=gallery.pk)
        assert row.has_password and row.has_pin
        assert "sunset-42" not in row.password_hash and "246813" not in row.pin_hash
        assert check_password("sunset-42", row.password_hash) and check_password("246813", row.pin_hash)
        services.set_password(gallery=row, password="another one")
        services.set_pin(gallery=row, pin="13572468")
        row = Gallery.objects.get(pk=gallery.pk)
        assert check_password("another one", row.password_hash) and check_password("13572468", row.pin_hash)
        for bad in ("123", "12345", "123456789", "12a456", ""):
            refused(lambda bad=bad: services.set_pin(gallery=row, pin=bad), 400, "6 to 8 digits")
        refused(lambda: services.set_password(gallery=row, password="abc"), 400)
        refused(lambda: services.set_password(gallery=row, password=" padded "), 400)
        services.clear_password(gallery=row)
        services.clear_pin(gallery=row)
        row = Gallery.objects.get(pk=gallery.pk)
        assert (row.password_hash, row.pin_hash) == ("", "")


def test_revoke_restore_and_expiry(a: Setup):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        services.revoke(gallery=gallery)
        assert Gallery.objects.get(pk=gallery.pk).revoked_at is not None
        assert selectors.gallery_status(Gallery.objects.get(pk=gallery.pk)) == selectors.STATUS_REVOKED
        services.restore(gallery=gallery)
        assert Gallery.objects.get(pk=gallery.pk).revoked_at is None
        Gallery.objects.filter(pk=gallery.pk).update(
            expires_at=timezone.now() - timedelta(minutes=1), reminder_sent_at=timezone.now()
        )
        gallery = Gallery.objects.get(pk=gallery.pk)
        assert selectors.gallery_status(gallery) == selectors.STATUS_EXPIRED
        services.extend(gallery=gallery, days=10)
        gallery = Gallery.objects.get(pk=gallery.pk)
        assert timezone.now() + timedelta(days=9) < gallery.expires_at <= timezone.now() + timedelta(days=10)
        assert gallery.reminder_sent_at is None  # a new date, a new reminder
        services.set_expiry(gallery=gallery, expires_at=None)
        assert Gallery.objects.get(pk=gallery.pk).expires_at is None
        refused(lambda: services.extend(gallery=gallery, days=0), 400)


# --- Sharing --------------------------------------------------------------------------------------------------


def test_share_emails_the_link_and_hints_never_the_password(
    a: Setup, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    studio = a.tenant.studio
    studio.contact_email = "hello@studio-a.example"
    studio.save()
    with tenant_context(studio):
        gallery = services.create_gallery(
            client=a.client,
            run=a.run,
            title="Summer portraits",
            message="Thank you!",
            password="secret-sunset",
            pin="987654",
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.share(gallery=gallery, user=a.tenant.owner)
        row = Gallery.objects.get(pk=gallery.pk)
        assert row.shared_at is not None
        assert selectors.gallery_status(row) == selectors.STATUS_SHARED
        assert GalleryEvent.objects.filter(gallery=gallery, kind=GalleryEvent.Kind.EMAIL).count() == 1
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    link = f"http://localhost:8000/s/{studio.slug}/g/{gallery.token}/"  # no request: PLATFORM_BASE_URL
    html = message.alternatives[0][0]
    assert message.to == [a.client.email] and message.reply_to == ["hello@studio-a.example"]
    assert "Summer portraits" in message.subject and "Studio A" in message.subject
    for body in (message.body, html):
        assert link in body
        assert "Summer portraits" in body and "Thank you!" in body
        assert "the password Studio A gave you" in body and "PIN Studio A gave you" in body
        assert "secret-sunset" not in body and "987654" not in body
        assert row.expires_at.strftime("%Y") in body
        assert "hello@studio-a.example" in body
    assert "#aa3366" in html  # the studio's colour


def test_share_with_a_base_url_uses_it(a: Setup, django_capture_on_commit_callbacks: Any, mailoutbox: list):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        with django_capture_on_commit_callbacks(execute=True):
            services.share(gallery=gallery, base_url="https://portraits.example.com/")
    assert f"https://portraits.example.com/g/{gallery.token}/" in mailoutbox[0].body


def test_share_is_refused_without_email_revoked_expired_or_empty(
    a: Setup, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        with django_capture_on_commit_callbacks(execute=True):
            services.revoke(gallery=gallery)
            refused(lambda: services.share(gallery=gallery), 409, "revoked")
            services.restore(gallery=gallery)
            gallery.expires_at = timezone.now() - timedelta(seconds=1)
            refused(lambda: services.share(gallery=gallery), 409, "expired")
            gallery.expires_at = None
            empty = services.create_gallery(client=a.client, portraits=[])
            refused(lambda: services.share(gallery=empty), 409, "no portraits")
            a.client.email = ""
            a.client.save()
            gallery.client.email = ""
            refused(lambda: services.share(gallery=gallery), 409, "no email")
        assert Gallery.objects.get(pk=gallery.pk).shared_at is None
        assert not GalleryEvent.objects.exists()
    assert mailoutbox == []


# --- Reminders ------------------------------------------------------------------------------------------------


def _gallery(
    setup: Setup, *, expires_in: timedelta | None, shared_ago: timedelta | None = timedelta(days=20), **fields: Any
) -> Gallery:
    now = timezone.now()
    with tenant_context(setup.tenant.studio):
        gallery = services.create_gallery(client=setup.client, run=setup.run)
        Gallery.objects.filter(pk=gallery.pk).update(
            expires_at=now + expires_in if expires_in is not None else None,
            shared_at=now - shared_ago if shared_ago is not None else None,
            **fields,
        )
        return Gallery.objects.get(pk=gallery.pk)


def test_reminders_go_once_to_shared_galleries_closing_within_the_window_of_every_studio(
    a: Setup, tenant_b: Tenant, django_capture_on_commit_callbacks: Any, mailoutbox: list
):
    b = make_setup(tenant_b, picks=1, others=0)
    due = _gallery(a, expires_in=timedelta(days=2))
    due_b = _gallery(b, expires_in=timedelta(hours=5))
    later = _gallery(a, expires_in=timedelta(days=4))  # outside the 3-day window
    _gallery(a, expires_in=timedelta(days=2), shared_ago=None)  # never sent to the client
    _gallery(a, expires_in=timedelta(days=2), revoked_at=timezone.now())
    _gallery(a, expires_in=-timedelta(hours=1))  # already closed
    _gallery(a, expires_in=None)  # never closes
    _gallery(a, expires_in=timedelta(days=2), shared_ago=timedelta(hours=1))  # sent inside the window
    _gallery(a, expires_in=timedelta(days=2), reminder_sent_at=timezone.now() - timedelta(days=1))
    no_email = make_setup(a.tenant, picks=1, others=0)
    with tenant_context(a.tenant.studio):
        no_email.client.email = ""
        no_email.client.save()
    _gallery(no_email, expires_in=timedelta(days=2))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.send_expiry_reminders()
    assert result == {"sent": 2, "failed": 0}
    assert sorted(m.to[0] for m in mailoutbox) == sorted([a.client.email, b.client.email])
    by_to = {m.to[0]: m for m in mailoutbox}
    assert f"/s/studio-a/g/{due.token}/" in by_to[a.client.email].body
    assert f"/s/studio-b/g/{due_b.token}/" in by_to[b.client.email].body
    assert "closes on" in by_to[a.client.email].body and "closes on" in by_to[a.client.email].subject
    with tenant_context(a.tenant.studio):
        assert Gallery.objects.get(pk=due.pk).reminder_sent_at is not None
        assert Gallery.objects.get(pk=later.pk).reminder_sent_at is None
        assert GalleryEvent.objects.filter(gallery=due, kind=GalleryEvent.Kind.EMAIL, detail="reminder").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_expiry_reminders() == {"sent": 0, "failed": 0}  # idempotent
    assert len(mailoutbox) == 2

    # A day later the other one enters the window.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_expiry_reminders(now=timezone.now() + timedelta(days=1, hours=1))["sent"] == 1
    assert mailoutbox[-1].to == [a.client.email] and later.token in mailoutbox[-1].body


def test_a_studio_without_reminders_sends_none(a: Setup, django_capture_on_commit_callbacks: Any, mailoutbox: list):
    _gallery(a, expires_in=timedelta(days=1))
    with tenant_context(a.tenant.studio):
        services.update_settings(reminder_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_expiry_reminders()["sent"] == 0
    assert mailoutbox == []


def test_the_reminder_task_is_scheduled_every_hour():
    from django_q.models import Schedule

    from galleries import tasks

    schedule = Schedule.objects.get(name="galleries.send_expiry_reminders")
    assert (schedule.func, schedule.schedule_type) == ("galleries.tasks.send_expiry_reminders", Schedule.HOURLY)
    assert tasks.send_expiry_reminders() == {"sent": 0, "failed": 0, "favourites_reminded": 0}


# --- Entitlements ---------------------------------------------------------------------------------------------


def test_entitlements_take_the_download_limit_from_the_gallery_or_the_studio(a: Setup):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        first, second = gallery.entries.order_by("position").values_list("portrait_id", flat=True)
        granted = services.grant_entitlements(
            gallery=gallery, portraits=[first, second], size="full", user=a.tenant.owner
        )
        assert [(e.portrait_id, e.size, e.source, e.download_limit, e.downloads) for e in granted] == [
            (first, "full", "staff", 5, 0),
            (second, "full", "staff", 5, 0),
        ]
        assert granted[0].granted_by == a.tenant.owner
        # Granting again keeps the active one; another size is another entitlement.
        again = services.grant_entitlements(gallery=gallery, portraits=[first], size="full")
        assert [e.pk for e in again] == [granted[0].pk]
        services.update_settings(download_limit=0)
        web = services.grant_entitlements(gallery=gallery, portraits=[first], size="web")[0]
        assert (web.size, web.download_limit, web.downloads_left) == ("web", 0, None)
        services.update_gallery(gallery=gallery, download_limit=2)
        services.revoke_entitlement(entitlement=granted[0])
        assert Entitlement.objects.get(pk=granted[0].pk).revoked_at is not None
        renewed = services.grant_entitlements(gallery=gallery, portraits=[first], size="full")[0]
        assert renewed.pk != granted[0].pk and renewed.download_limit == 2
        assert Entitlement.objects.filter(gallery=gallery).count() == 4


def test_entitlements_are_only_for_portraits_of_the_gallery(a: Setup):
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        outside = next(p for p in a.portraits() if not p.is_pick)
        inside = gallery.entries.first().portrait_id
        refused(lambda: services.grant_entitlements(gallery=gallery, portraits=[outside], size="full"), 400, "not in")
        refused(lambda: services.grant_entitlements(gallery=gallery, portraits=[inside], size="huge"), 400, "size")
        refused(lambda: services.grant_entitlements(gallery=gallery, portraits=[], size="full"), 400)
        assert not Entitlement.objects.exists()


# --- Statistics -----------------------------------------------------------------------------------------------


def test_stats_count_views_favorites_and_downloads_per_day_in_one_query(a: Setup, django_assert_num_queries: Any):
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        other = services.create_gallery(client=a.client, run=a.run)

        def event(kind: str, days_ago: int, g: Gallery = gallery) -> None:
            e = GalleryEvent.objects.create(gallery=g, kind=kind)
            GalleryEvent.objects.filter(pk=e.pk).update(created_at=now - timedelta(days=days_ago))

        K = GalleryEvent.Kind
        for kind, days_ago in [
            (K.VIEW, 0), (K.VIEW, 0), (K.VIEW, 0), (K.FAVORITE, 0), (K.DOWNLOAD, 0), (K.ZIP, 0),
            (K.VIEW, 2), (K.UNFAVORITE, 2), (K.MORE_LIKE_ME, 2),
            (K.VIEW, 29), (K.VIEW, 30), (K.DOWNLOAD, 45),
        ]:  # fmt: skip
            event(kind, days_ago)
        event(K.VIEW, 0, other)
        with django_assert_num_queries(1):
            stats = selectors.gallery_stats(gallery=gallery, now=now)
    assert len(stats.days) == 30
    assert stats.days[-1].day == now.date() and stats.days[0].day == (now - timedelta(days=29)).date()
    today, two_days_ago, oldest = stats.days[-1], stats.days[-3], stats.days[0]
    assert (today.views, today.favorites, today.downloads) == (3, 1, 2)
    assert (two_days_ago.views, two_days_ago.favorites, two_days_ago.downloads) == (1, 0, 0)
    assert (oldest.views, oldest.favorites, oldest.downloads) == (1, 0, 0)
    assert sum(d.total for d in stats.days) == 3 + 1 + 2 + 1 + 1
    assert stats.window == {"views": 5, "favorites": 1, "downloads": 2}
    assert stats.totals == {
        "views": 6,
        "unlocks": 0,
        "favorites": 1,
        "unfavorites": 1,
        "downloads": 3,
        "more_like_me": 1,
        "emails": 0,
    }
    assert stats.peak == 3


def test_erasing_a_client_deletes_their_galleries(a: Setup):
    from clients.services import erase_client

    with tenant_context(a.tenant.studio):
        gallery = services.create_gallery(client=a.client, run=a.run)
        services.grant_entitlements(gallery=gallery, portraits=[gallery.entries.first().portrait_id], size="full")
        GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.VIEW)
        erase_client(client=a.client, performed_by=a.tenant.owner)
        assert not Gallery.objects.exists()
        assert not GalleryPortrait.objects.exists() and not Entitlement.objects.exists()
        assert not GalleryEvent.objects.exists()
