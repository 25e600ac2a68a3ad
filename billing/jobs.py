"""Job kinds of billing (default cluster): `billing.print_files`, the print-ready files of a paid print order
(billing.prints.make_print_files); `billing.webhook_delivery`, one attempt at an outgoing webhook
delivery (billing.webhooks_out.attempt). A failed attempt is not a failed job: the delivery records it and its
next try (the schedule's sweep queues it when due)."""

from __future__ import annotations

from typing import Any

from billing import prints, webhooks_out
from jobs.registry import JobContext, JobError, job_handler


@job_handler(webhooks_out.DELIVERY_KIND, cluster="default", description="Sends an event to a webhook endpoint.")
def deliver_webhook(ctx: JobContext) -> dict[str, Any]:
    """POST one delivery's event to its endpoint, signed, and record the answer."""
    try:
        delivery_id = int(ctx.payload.get("delivery_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no webhook delivery.") from None
    return webhooks_out.attempt(delivery_id=delivery_id)


@job_handler(prints.PRINT_FILES_KIND, cluster="default", description="Makes the print-ready files of a print order.")
def make_print_files(ctx: JobContext) -> dict[str, Any]:
    """Each print line's file (cropped, at the product's size and 300 dpi, sRGB), then the order to its fulfiller."""
    try:
        order_id = int(ctx.payload.get("order_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no order.") from None
    return prints.make_print_files(order_id=order_id, progress=ctx.progress)
