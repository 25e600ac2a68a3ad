"""The client messages galleries sends (clients/messages.py queues, renders and sends them, once per event):

- **A new portrait is ready**: the job of a client's "more like me" from the gallery succeeded (the job system's
  `job_finished`, connected in galleries.apps), told once per request, whether or not the client is still on
  the page.
- **The gallery closes soon with favourites not bought**: `send_favourites_reminders`, run by the hourly
  reminder task, `GALLERY_FAVOURITES_REMINDER_DAYS` (2) before a shared gallery closes, when the client has
  favourites with no download right yet. A reminder: unsubscribable, skipped for a client who unsubscribed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clients.messages import queue_message
from clients.models import ClientMessage
from galleries.models import Entitlement, Gallery, GalleryPortrait, GalleryRequest
from galleries.services import gallery_link
from jobs.models import Job
from tenants.context import platform_context, tenant_context
from tenants.models import Studio

log = structlog.get_logger("galleries.messages")

BATCH = 500


def reminder_days() -> int:
    return int(settings.GALLERY_FAVOURITES_REMINDER_DAYS)


def on_job_finished(sender: Any, job: Job, **kwargs: Any) -> None:
    """job_finished (in the transaction that ends the job): a gallery's "more like me" succeeded → tell the client.
    Never fails the job's end: a failure is logged."""
    if job.state != Job.State.SUCCEEDED:
        return
    try:
        with transaction.atomic():  # a savepoint
            _portrait_ready(job)
    except Exception:
        log.exception("portrait_ready_message_failed", job_id=job.pk)


def _portrait_ready(job: Job) -> None:
    request = GalleryRequest.objects.select_related("gallery__client", "gallery__studio").filter(job=job).first()
    if request is None or request.gallery.revoked_at is not None:
        return
    gallery = request.gallery
    queue_message(
        client=gallery.client,
        kind=ClientMessage.Kind.PORTRAIT_READY,
        event_key=f"portrait_ready:{request.pk}",
        template="galleries/messages/portrait_ready",
        context={"gallery": gallery, "link": gallery_link(gallery=gallery)},
    )


def unbought_favourites(gallery: Gallery) -> list[GalleryPortrait]:
    """The gallery's favourites with no active download right (one query)."""
    owned = Entitlement.objects.filter(gallery=gallery, revoked_at__isnull=True).values("portrait_id")
    return list(
        GalleryPortrait.objects.filter(gallery=gallery, is_favorite=True)
        .exclude(portrait_id__in=owned)
        .order_by("position")
    )


def send_favourites_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Platform work (the hourly reminder task): each shared, open gallery closing within reminder_days() whose
    client has unbought favourites gets one message (once per gallery and closing date, whatever the runs)."""
    days = reminder_days()
    if days <= 0:
        return {"queued": 0}
    now = now or timezone.now()
    with platform_context():
        due = list(
            Gallery.objects.filter(
                expires_at__gt=now,
                expires_at__lte=now + timedelta(days=days),
                shared_at__isnull=False,
                revoked_at__isnull=True,
                entries__is_favorite=True,
            )
            .exclude(client__email="")
            .distinct()
            .order_by("expires_at")
            .values_list("pk", "studio_id")[:BATCH]
        )
    queued = 0
    studios = {studio.pk: studio for studio in Studio.objects.filter(pk__in={s for _, s in due})}
    for pk, studio_id in due:
        studio = studios.get(studio_id)
        if studio is None or not studio.is_active:
            continue
        with tenant_context(studio):
            try:
                with transaction.atomic():
                    gallery = Gallery.objects.select_related("client").get(pk=pk)
                    key = f"gallery_closing:{gallery.pk}:{gallery.expires_at:%Y%m%d%H%M}"
                    if ClientMessage.objects.filter(event_key=key).exists():
                        continue  # told already (an earlier run)
                    favourites = unbought_favourites(gallery)
                    if not favourites:
                        continue
                    expires_at = timezone.localtime(gallery.expires_at)
                    message = queue_message(
                        client=gallery.client,
                        kind=ClientMessage.Kind.GALLERY_CLOSING,
                        event_key=key,
                        template="galleries/messages/gallery_closing",
                        context={
                            "gallery": gallery,
                            "expires_at": expires_at,
                            "favourites": [{"number": entry.position + 1} for entry in favourites],
                            "link": gallery_link(gallery=gallery),
                        },
                    )
                    queued += message is not None and message.status == ClientMessage.Status.QUEUED
            except Exception:
                log.exception("favourites_reminder_failed", gallery_id=pk, studio_id=studio_id)
    return {"queued": queued}
