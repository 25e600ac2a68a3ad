"""What each outgoing webhook event says (docs/webhooks.md), from the signals of the apps below billing, connected
in BillingConfig.ready(): jobs' `job_finished` (photo set validated, double ready or failed, run finished),
galleries' `gallery_shared` and `gallery_viewed`, clients' `client_erased`; billing's own orders call
`order_paid` / `order_refunded`.

Every payload holds ids, statuses, times, counts and links to the studio's API objects only: never a photo, an
image or its URL, a face, a name or an email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing import webhooks_out
from billing.models import Order, PrintFulfilment, WebhookEvent
from clients.models import PhotoSet
from clients.selectors import readiness
from clients.services import VALIDATE_SET_KIND
from generation.doubles import RUN_ITEM_KIND, TRAIN_KIND
from generation.models import DigitalDouble, RenderRunItem, run_status
from jobs.models import Job


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _set_validated(job: Job) -> None:
    if not webhooks_out.wanted(WebhookEvent.SET_VALIDATED):
        return
    try:
        photo_set_id = int((job.payload or {}).get("photo_set_id"))
    except (TypeError, ValueError):
        return
    photo_set = PhotoSet.objects.filter(pk=photo_set_id).first()
    if photo_set is None:
        return
    ready = readiness(photo_set=photo_set)
    webhooks_out.emit(
        event_type=WebhookEvent.SET_VALIDATED,
        object_ref=f"photo_set:{photo_set.pk}",
        data={
            "object": "photo_set",
            "id": photo_set.pk,
            "client_id": photo_set.client_id,
            "status": photo_set.status,
            "accepted": ready.accepted,
            "rejected": ready.rejected,
            "pending": ready.pending,
            "can_train": ready.can_train,
            "job_id": job.pk,
            "url": webhooks_out.api_link(
                "api-photoset-detail", client_id=photo_set.client_id, photoset_id=photo_set.pk
            ),
        },
    )


def _double_ended(job: Job) -> None:
    ready = job.state == Job.State.SUCCEEDED
    if not webhooks_out.wanted(WebhookEvent.DOUBLE_READY if ready else WebhookEvent.DOUBLE_FAILED):
        return
    try:
        double_id = int((job.payload or {}).get("double_id"))
    except (TypeError, ValueError):
        return
    double = DigitalDouble.objects.filter(pk=double_id).first()
    if double is None:
        return
    webhooks_out.emit(
        event_type=WebhookEvent.DOUBLE_READY if ready else WebhookEvent.DOUBLE_FAILED,
        object_ref=f"double:{double.pk}",
        data={
            "object": "double",
            "id": double.pk,
            "client_id": double.client_id,
            "status": "ready" if ready else "failed",
            "base_model": double.base_model,
            "job_id": job.pk,
            "job_state": job.state,
            "error": "" if ready else (job.error or "")[:300],
            "finished_at": _iso(job.finished_at),
            "client_url": webhooks_out.api_link("api-client-detail", client_id=double.client_id),
        },
    )


def _run_item_ended(job: Job) -> None:
    if not webhooks_out.wanted(WebhookEvent.RUN_FINISHED):
        return
    item = RenderRunItem.objects.select_related("run").filter(job_id=job.pk).first()
    if item is None:
        return
    run = item.run
    jobs = list(Job.objects.filter(pk__in=RenderRunItem.objects.filter(run=run).values("job_id")))
    by_id = {j.pk: j for j in jobs}
    items = list(RenderRunItem.objects.filter(run=run).values_list("job_id", flat=True))
    states = [by_id[j].state if j in by_id else Job.State.FAILED for j in items]
    if any(s in (Job.State.QUEUED, Job.State.RUNNING) for s in states):
        return
    webhooks_out.emit(
        event_type=WebhookEvent.RUN_FINISHED,
        object_ref=f"run:{run.pk}",
        data={
            "object": "run",
            "id": run.pk,
            "kind": run.kind,
            "double_id": run.double_id,
            "status": run_status([by_id.get(j) for j in items]),
            "items": len(states),
            "items_succeeded": sum(1 for s in states if s == Job.State.SUCCEEDED),
            "images_requested": run.images,
            "created_at": _iso(run.created_at),
            "url": webhooks_out.api_link("run-detail", renderrun_id=run.pk),
        },
    )


def on_job_finished(sender: Any, job: Job, **kwargs: Any) -> None:
    """jobs.services.job_finished: a validation, a training or the last item of a run ended."""
    if job.kind == VALIDATE_SET_KIND and job.state == Job.State.SUCCEEDED:
        _set_validated(job)
    elif job.kind == TRAIN_KIND:
        _double_ended(job)
    elif job.kind == RUN_ITEM_KIND:
        _run_item_ended(job)


def _gallery_data(gallery: Any) -> dict[str, Any]:
    return {
        "object": "gallery",
        "id": gallery.pk,
        "client_id": gallery.client_id,
        "shared_at": _iso(gallery.shared_at),
        "expires_at": _iso(getattr(gallery, "expires_at", None)),
        "url": webhooks_out.api_link("api-gallery-detail", gallery_id=gallery.pk),
    }


def on_gallery_shared(sender: Any, gallery: Any, shared_at: datetime, **kwargs: Any) -> None:
    webhooks_out.emit(
        event_type=WebhookEvent.GALLERY_SHARED,
        object_ref=f"gallery:{gallery.pk}",
        data=lambda: _gallery_data(gallery),
    )


def on_gallery_viewed(sender: Any, gallery: Any, viewed_at: datetime, **kwargs: Any) -> None:
    webhooks_out.emit(
        event_type=WebhookEvent.GALLERY_VIEWED,
        object_ref=f"gallery:{gallery.pk}",
        data=lambda: {**_gallery_data(gallery), "viewed_at": _iso(viewed_at)},
    )


def on_client_erased(sender: Any, client_ref: int, receipt: Any, **kwargs: Any) -> None:
    webhooks_out.emit(
        event_type=WebhookEvent.CLIENT_ERASED,
        object_ref=f"client:{client_ref}",
        data=lambda: {
            "object": "client",
            "id": client_ref,
            "erased_at": _iso(receipt.performed_at),
            "deletion_receipt_id": receipt.pk,
            "counts": {str(k): int(v) for k, v in (receipt.counts or {}).items()},
        },
    )


def _order_data(order: Order) -> dict[str, Any]:
    return {
        "object": "order",
        "id": order.pk,
        "gallery_id": order.gallery_id,
        "status": order.status,
        "currency": order.currency,
        "amount": str(order.amount),
        "items": order.items.count(),
        "paid_at": _iso(order.paid_at),
        "refunded_at": _iso(order.refunded_at),
        "url": webhooks_out.api_link("api-order-detail", order_id=order.pk),
    }


def order_paid(order: Order) -> None:
    """Called by billing.orders in the transaction that marks the order paid."""
    webhooks_out.emit(
        event_type=WebhookEvent.ORDER_PAID, object_ref=f"order:{order.pk}", data=lambda: _order_data(order)
    )


def order_shipped(fulfilment: PrintFulfilment) -> None:
    """Called by billing.fulfilment in the transaction that marks a print order shipped. The tracking goes out;
    the shipping address never does (it is the client's, like their photos)."""
    order = fulfilment.order
    webhooks_out.emit(
        event_type=WebhookEvent.ORDER_SHIPPED,
        object_ref=f"order:{order.pk}",
        data=lambda: {
            **_order_data(order),
            "fulfilment": {
                "status": fulfilment.status,
                "provider": fulfilment.provider,
                "carrier": fulfilment.carrier,
                "tracking_number": fulfilment.tracking_number,
                "tracking_url": fulfilment.tracking_url,
                "shipped_at": _iso(fulfilment.shipped_at),
            },
        },
    )


def order_refunded(order: Order) -> None:
    """Called by billing.orders in the transaction that marks the order refunded (the first time)."""
    webhooks_out.emit(
        event_type=WebhookEvent.ORDER_REFUNDED, object_ref=f"order:{order.pk}", data=lambda: _order_data(order)
    )
