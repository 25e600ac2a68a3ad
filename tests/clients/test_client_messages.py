"""Client messages (clients/messages.py): photos received and checked, order receipt, a new portrait after "more
like me", a gallery closing with favourites not bought. Each is sent after the commit by a job, retried when the
mail server fails, never twice for one event, listed on the client's page and deleted with the client."""

from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPServerDisconnected
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client as WebClient
from django.utils import timezone

from clients import messages
from clients.models import ClientMessage, Photo, PhotoSet, UploadLink
from clients.services import VALIDATE_SET_KIND, erase_client
from galleries.models import Entitlement, Gallery, GalleryPortrait, GalleryRequest
from jobs.models import Job
from jobs.services import job_ended
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.factories import make_portrait
from tests.jobs.conftest import Enqueued

pytestmark = pytest.mark.django_db


def _another_portrait(portrait: Any) -> Any:
    """One more portrait of the same double."""
    return type(portrait).objects.create(double=portrait.double, recipe=portrait.recipe, likeness=50.0, rank=2)


class RefusingBackend(BaseEmailBackend):
    """A mail server that hangs up."""

    def send_messages(self, email_messages: Any) -> int:
        raise SMTPServerDisconnected("Connection unexpectedly closed")


def _send_queued(tenant: Tenant, enqueued: Enqueued) -> list[str]:
    """Run the send jobs queued so far, as a worker would; their results."""
    results = [run_job(job_id, tenant.studio.pk) for job_id in enqueued.job_ids]
    enqueued.calls.clear()
    return results


def _checked_set(tenant: Tenant) -> tuple[PhotoSet, Job]:
    """A set whose client uploaded three photos with their link, checked by a validation job: two accepted, one
    rejected with the reason a client reads."""
    from tests.clients.factories import make_client

    with tenant_context(tenant.studio):
        client = make_client(tenant)
        photo_set = PhotoSet.objects.create(client=client, retention_until=timezone.now() + timedelta(days=7))
        UploadLink.objects.create(photo_set=photo_set, expires_at=timezone.now() + timedelta(days=3))
        started = timezone.now() - timedelta(seconds=5)
        job = Job.objects.create(
            kind=VALIDATE_SET_KIND,
            payload={"photo_set_id": photo_set.pk},
            state=Job.State.SUCCEEDED,
            started_at=started,
            attempts=1,
        )
        for name, status, reason in (
            ("beach.jpg", Photo.Status.ACCEPTED, ""),
            ("window.jpg", Photo.Status.ACCEPTED, ""),
            ("party.jpg", Photo.Status.REJECTED, "Two people are in this photo: send one where you are alone."),
        ):
            Photo.objects.create(
                photo_set=photo_set,
                original_name=name,
                status=status,
                reason=reason,
                source=Photo.Source.SELF,
                validated_at=timezone.now(),
            )
    return photo_set, job


def test_photos_checked_is_sent_after_commit_once_with_what_to_replace_and_why(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any, client_a: WebClient
) -> None:
    photo_set, job = _checked_set(tenant_a)
    with tenant_context(tenant_a.studio):
        with django_capture_on_commit_callbacks(execute=False) as pending:
            job_ended(job)  # the validation job's end (job_finished)
            assert enqueued.calls == [] and mail.outbox == []  # nothing before the commit
        for callback in pending:
            callback()
        job_ended(job)  # the same event again: nothing more
        message = ClientMessage.objects.get()
    assert message.kind == ClientMessage.Kind.PHOTOS_CHECKED and message.status == ClientMessage.Status.QUEUED
    assert len(enqueued.calls) == 1
    assert _send_queued(tenant_a, enqueued) == ["succeeded"]
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [photo_set.client.email] and "a few need replacing" in email.subject
    assert "2 of them are just right" in email.body and "party.jpg: Two people are in this photo" in email.body
    with tenant_context(tenant_a.studio):
        token = photo_set.upload_links.get().token
    assert f"/u/{token}/" in email.body  # the link to send new ones
    html = email.alternatives[0][0]
    assert "#aa3366" in html and "Studio A" in html  # the studio's branding
    with tenant_context(tenant_a.studio):
        message.refresh_from_db()
    assert message.status == ClientMessage.Status.SENT and message.sent_at is not None

    page = client_a.get(f"{tenant_a.prefix}/clients/{photo_set.client.pk}/").content.decode()
    assert "Messages to the client" in page and "Photos received and checked" in page and "Sent" in page


def test_a_mail_server_failure_is_retried_and_sends_once_it_answers(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    photo_set, job = _checked_set(tenant_a)
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        job_ended(job)
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    with django_capture_on_commit_callbacks(execute=True):
        assert _send_queued(tenant_a, enqueued) == ["requeued"]  # to try again
    with tenant_context(tenant_a.studio):
        message = ClientMessage.objects.get()
        assert message.attempts == 1 and "Connection unexpectedly closed" in message.error
        assert message.status == ClientMessage.Status.QUEUED
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert _send_queued(tenant_a, enqueued) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == (ClientMessage.Status.SENT, 2, "")
    assert len(mail.outbox) == 1


def test_a_new_portrait_after_more_like_me_is_told_once(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(tenant_a.studio):
        portrait = make_portrait(tenant_a)
        gallery = Gallery.objects.create(client=portrait.double.client, title="Spring", created_by=tenant_a.owner)
        job = Job.objects.create(kind="portraits.render", state=Job.State.SUCCEEDED, attempts=1)
        GalleryRequest.objects.create(gallery=gallery, source=portrait, job=job)
        with django_capture_on_commit_callbacks(execute=True):
            job_ended(job)
            job_ended(job)
    _send_queued(tenant_a, enqueued)
    assert [m.subject for m in mail.outbox] == ["Studio A: your new portrait is ready"]
    assert f"/g/{gallery.token}/" in mail.outbox[0].body and "“Spring”" in mail.outbox[0].body


def _closing_gallery(tenant: Tenant) -> tuple[Gallery, list[GalleryPortrait]]:
    with tenant_context(tenant.studio):
        first = make_portrait(tenant)
        client = first.double.client
        gallery = Gallery.objects.create(
            client=client,
            title="Spring",
            created_by=tenant.owner,
            shared_at=timezone.now() - timedelta(days=20),
            expires_at=timezone.now() + timedelta(days=1),
        )
        entries = []
        for position in range(3):
            portrait = first if position == 0 else _another_portrait(first)
            entries.append(
                GalleryPortrait.objects.create(gallery=gallery, portrait=portrait, position=position, is_favorite=True)
            )
        Entitlement.objects.create(gallery=gallery, portrait=entries[0].portrait, granted_by=tenant.owner)  # bought
    return gallery, entries


def test_a_gallery_closing_with_unbought_favourites_gets_one_reminder_with_an_unsubscribe(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any, client: WebClient
) -> None:
    from galleries.messages import send_favourites_reminders

    gallery, _ = _closing_gallery(tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert send_favourites_reminders() == {"queued": 1}
        assert send_favourites_reminders() == {"queued": 0}  # the hourly run again: nothing new
    _send_queued(tenant_a, enqueued)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert "2 favourites not yet yours" in email.subject
    assert "Portrait 2" in email.body and "Portrait 3" in email.body and "Portrait 1" not in email.body
    unsubscribe = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe in email.body
    path = "/" + unsubscribe.split("://", 1)[1].split("/", 1)[1]
    assert "Stop reminders?" in client.get(path).content.decode()  # a mail scanner's GET changes nothing
    with tenant_context(tenant_a.studio):
        assert gallery.client.__class__.objects.get(pk=gallery.client_id).reminders_opt_out_at is None
    assert "No more reminders" in client.post(path).content.decode()
    assert client.get(path.replace("/m/stop/", "/m/stop/x")).status_code == 404  # a tampered token

    # Unsubscribed: the next closing date's reminder is recorded but not sent.
    with tenant_context(tenant_a.studio):
        Gallery.objects.filter(pk=gallery.pk).update(expires_at=timezone.now() + timedelta(hours=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_favourites_reminders() == {"queued": 0}
    with tenant_context(tenant_a.studio):
        statuses = sorted(ClientMessage.objects.values_list("status", flat=True))
    assert statuses == [ClientMessage.Status.SENT, ClientMessage.Status.SKIPPED] and enqueued.calls == []


def test_an_unsubscribe_link_of_another_studio_is_refused(two_tenants: Any, client: WebClient) -> None:
    a, b = two_tenants
    from tests.clients.factories import make_client

    with tenant_context(a.studio):
        customer = make_client(a)
        token = messages.unsubscribe_token(customer)
    assert client.post(f"{b.prefix}/m/stop/{token}/").status_code == 404
    with tenant_context(a.studio):
        customer.refresh_from_db()
    assert customer.reminders_opt_out_at is None


def test_an_order_receipt_and_erasure_of_the_messages(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    from billing.messages import queue_receipt
    from billing.models import Order, OrderItem

    with tenant_context(tenant_a.studio):
        portrait = make_portrait(tenant_a)
        gallery = Gallery.objects.create(client=portrait.double.client, title="Spring", created_by=tenant_a.owner)
        order = Order.objects.create(
            gallery=gallery, currency="eur", amount="19.80", status=Order.Status.PAID, paid_at=timezone.now()
        )
        OrderItem.objects.create(order=order, portrait=portrait, unit_price="9.90")
        OrderItem.objects.create(order=order, portrait=_another_portrait(portrait), unit_price="9.90")
        with django_capture_on_commit_callbacks(execute=True):
            queue_receipt(order)
            queue_receipt(order)  # a webhook delivered twice
    _send_queued(tenant_a, enqueued)
    assert len(mail.outbox) == 1
    assert f"your receipt for order {order.pk}" in mail.outbox[0].subject
    assert "Total paid: €19.80" in mail.outbox[0].body and mail.outbox[0].body.count("€9.90") == 2

    with tenant_context(tenant_a.studio):
        receipt = erase_client(client=gallery.client, performed_by=tenant_a.owner)
        assert not ClientMessage.objects.exists()
    assert receipt.counts["messages"] == 1


def test_a_message_is_written_in_the_studios_language_for_its_clients(
    tenant_a: Tenant, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    from tenants.models import Studio

    Studio.objects.filter(pk=tenant_a.studio.pk).update(client_language="fr")
    tenant_a.studio.refresh_from_db()
    with tenant_context(tenant_a.studio):
        portrait = make_portrait(tenant_a)
        gallery = Gallery.objects.create(client=portrait.double.client, title="Printemps", created_by=tenant_a.owner)
        job = Job.objects.create(kind="portraits.render", state=Job.State.SUCCEEDED, attempts=1)
        GalleryRequest.objects.create(gallery=gallery, source=portrait, job=job)
        with django_capture_on_commit_callbacks(execute=True):
            job_ended(job)
        assert ClientMessage.objects.get().language == "fr"
    _send_queued(tenant_a, enqueued)
    email = mail.outbox[0]
    assert email.subject == "Studio A\u00a0: votre nouveau portrait est prêt"
    assert "«\u00a0Printemps\u00a0»" in email.body and "Voir mon nouveau portrait" in email.alternatives[0][0]
