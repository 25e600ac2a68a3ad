"""What a studio tells its clients by email about their own things: photos received and checked (or which to
replace and why), an order's receipt, a new portrait after "more like me", a gallery closing soon with favourites
not bought. Each app calls `queue_message` when its event happens (clients, billing, galleries: they stand above
this one).

- **Once per event.** `event_key` names the event ("order_receipt:<order id>"); a second call for it returns the
  first message and sends nothing (a unique constraint, so two processes can't both send it).
- **After the commit, retried.** The message is rendered and stored in the event's transaction; the job that
  sends it (`clients.send_message`, default cluster) is queued on commit, and a mail server that refuses or can't
  be reached makes it retry (RetryableJobError, within the job's attempts).
- **In the client's language**, with the studio's branding (name, colour, logo, contact as Reply-To), plain text
  and HTML. Reminders (`REMINDER_KINDS`) carry an unsubscribe link and a List-Unsubscribe header and are skipped
  for a client who unsubscribed; messages about what the client asked for are transactional and always go out.
- **Listed on the client's page** (`recent_messages`), deleted with the client (erasure counts them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from smtplib import SMTPException
from typing import Any

import structlog
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from clients.models import Client, ClientMessage, Photo, PhotoSet, UploadLink
from clients.services import VALIDATE_SET_KIND, register_client_erasure_step
from jobs.models import Job
from jobs.registry import JobContext, JobError, RetryableJobError, job_handler
from jobs.services import enqueue_job
from tenants.emails import studio_base_url
from tenants.models import Studio
from tenants.templatetags.studio_tags import brand_contrast, safe_brand

log = structlog.get_logger("clients.messages")

SEND_KIND = "clients.send_message"
REMINDER_KINDS = frozenset({ClientMessage.Kind.GALLERY_CLOSING})
UNSUBSCRIBE_SALT = "clients.messages.unsubscribe"


def client_language(client: Client) -> str:
    """The language the client reads: the studio's language for its clients, else the platform's."""
    studio = client.studio
    return str(getattr(studio, "client_language", "") or settings.LANGUAGE_CODE)


def unsubscribe_token(client: Client) -> str:
    return signing.dumps({"s": client.studio_id, "c": client.pk}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(client: Client) -> str:
    return f"{studio_base_url(client.studio).rstrip('/')}/m/stop/{unsubscribe_token(client)}/"


def client_from_unsubscribe_token(token: str, *, studio: Studio) -> Client | None:
    """The client a link names, in this studio (None for a tampered link or another studio's)."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("s") != studio.pk:
        return None
    return Client.objects.filter(pk=data.get("c")).first()


def unsubscribe(*, client: Client) -> Client:
    """The client wants no more reminders (idempotent)."""
    Client.objects.filter(pk=client.pk, reminders_opt_out_at__isnull=True).update(reminders_opt_out_at=timezone.now())
    client.refresh_from_db(fields=["reminders_opt_out_at"])
    log.info("client_unsubscribed", client_id=client.pk)
    return client


def branding_context(studio: Studio) -> dict[str, Any]:
    """What every client email shows of the studio."""
    brand = safe_brand(studio.primary_color)
    base = studio_base_url(studio).rstrip("/")
    return {
        "studio": studio,
        "brand": brand,
        "brand_contrast": brand_contrast(brand),
        "logo_url": f"{base}/branding/logo/" if studio.logo else None,
    }


def queue_message(
    *, client: Client, kind: str, event_key: str, template: str, context: Mapping[str, Any]
) -> ClientMessage | None:
    """Render `template` (`<template>_subject.txt`, `.txt`, `.html`) in the client's language and queue it, once
    per `event_key`. None when the client has no email or, for a reminder, unsubscribed. Call it inside the
    event's transaction: the send job is queued when it commits."""
    if not client.email:
        return None
    existing = ClientMessage.objects.filter(event_key=event_key).first()
    if existing is not None:
        return existing
    reminder = kind in REMINDER_KINDS
    language = client_language(client)
    full = {**branding_context(client.studio), "client": client, **context}
    if reminder:
        full["unsubscribe_url"] = unsubscribe_url(client)
    with translation.override(language):
        # Line breaks and runs of spaces collapse; French non-breaking spaces (before ":" and inside « ») stay.
        subject = re.sub(r"[ \t\r\n]+", " ", render_to_string(f"{template}_subject.txt", full)).strip()[:255]
        text = render_to_string(f"{template}.txt", full)
        html = render_to_string(f"{template}.html", full)
    skipped = reminder and client.reminders_opt_out_at is not None
    try:
        with transaction.atomic():
            message = ClientMessage.objects.create(
                client=client,
                kind=kind,
                event_key=event_key[:200],
                to_email=client.email,
                language=language,
                subject=subject,
                body_text=text,
                body_html=html,
                status=ClientMessage.Status.SKIPPED if skipped else ClientMessage.Status.QUEUED,
                error="The client unsubscribed from reminders." if skipped else "",
            )
    except IntegrityError:  # the same event, queued by another process meanwhile
        return ClientMessage.objects.filter(event_key=event_key[:200]).first()
    if not skipped:
        message.job = enqueue_job(kind=SEND_KIND, payload={"message_id": message.pk})
        message.save(update_fields=["job"])
    log.info("client_message_queued", kind=kind, message_id=message.pk, client_id=client.pk, skipped=skipped)
    return message


def recent_messages(*, client: Client, limit: int = 20) -> list[ClientMessage]:
    return list(
        ClientMessage.objects.filter(client=client).only(
            "kind", "subject", "status", "created_at", "sent_at", "error", "language", "to_email"
        )[:limit]
    )


@job_handler(SEND_KIND, cluster="default", description="Sends one email to a client.")
def send_message(ctx: JobContext) -> dict[str, Any]:
    message = ClientMessage.objects.select_related("client__studio").filter(pk=ctx.payload.get("message_id")).first()
    if message is None:
        raise JobError("This message no longer exists (its client was erased).")
    if message.status == ClientMessage.Status.SENT:
        return {"message_id": message.pk, "sent": False, "already_sent": True}
    studio = message.client.studio
    headers = {}
    if message.kind in REMINDER_KINDS:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url(message.client)}>"
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to_email],
        reply_to=[studio.contact_email] if studio.contact_email else None,
        headers=headers,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    message.attempts += 1
    try:
        email.send(fail_silently=False)
    except (SMTPException, OSError) as exc:
        message.error = f"The mail server didn't take it: {exc}"[:300]
        last = ctx.job.attempts >= ctx.job.max_attempts
        message.status = ClientMessage.Status.FAILED if last else message.status
        message.save(update_fields=["attempts", "error", "status"])
        raise RetryableJobError(f"The mail server didn't take the message ({exc})") from None
    message.status, message.sent_at, message.error = ClientMessage.Status.SENT, timezone.now(), ""
    message.save(update_fields=["attempts", "status", "sent_at", "error"])
    log.info("client_message_sent", message_id=message.pk, kind=message.kind)
    return {"message_id": message.pk, "sent": True}


def photos_checked(sender: Any, job: Job, **kwargs: Any) -> None:
    """job_finished (connected in clients.apps): a validation job checked photos the client sent with their
    upload link, and none of the set's photos waits any more → tell the client what was accepted and what to
    replace, and why (once per validation job). Never fails the job's end: a failure is logged."""
    if job.kind != VALIDATE_SET_KIND:
        return
    try:
        with transaction.atomic():  # a savepoint
            _photos_checked(job)
    except Exception:
        log.exception("photos_checked_message_failed", job_id=job.pk)


def _photos_checked(job: Job) -> None:
    if job.kind != VALIDATE_SET_KIND or job.state != Job.State.SUCCEEDED or job.started_at is None:
        return
    photo_set = (
        PhotoSet.objects.select_related("client__studio").filter(pk=(job.payload or {}).get("photo_set_id")).first()
    )
    if photo_set is None or Photo.objects.filter(photo_set=photo_set, status=Photo.Status.PENDING).exists():
        return
    checked = list(
        Photo.objects.filter(photo_set=photo_set, source=Photo.Source.SELF, validated_at__gte=job.started_at)
        .only("status", "reason", "original_name")
        .order_by("uploaded_at", "id")
    )
    if not checked:
        return
    accepted = sum(photo.status == Photo.Status.ACCEPTED for photo in checked)
    rejected = [
        {"name": photo.original_name or f"#{photo.pk}", "reason": photo.reason}
        for photo in checked
        if photo.status == Photo.Status.REJECTED
    ]
    link = (
        UploadLink.objects.filter(photo_set=photo_set, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at")
        .first()
    )
    url = f"{studio_base_url(photo_set.client.studio).rstrip('/')}/u/{link.token}/" if link and rejected else ""
    queue_message(
        client=photo_set.client,
        kind=ClientMessage.Kind.PHOTOS_CHECKED,
        event_key=f"photos_checked:{photo_set.pk}:{job.pk}",
        template="clients/messages/photos_checked",
        context={"photo_set": photo_set, "accepted": accepted, "rejected": rejected, "link": url},
    )


@register_client_erasure_step("messages")
def erase_messages(client: Client) -> Mapping[str, int]:
    """The client's messages (their email, what they were told) go with them; the receipt counts them."""
    count, _ = ClientMessage.objects.filter(client=client).delete()
    return {"messages": count} if count else {}
