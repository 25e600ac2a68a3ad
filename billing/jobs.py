"""Job kinds of billing: `billing.webhook_delivery` (default cluster), one attempt at an outgoing webhook
delivery (billing.webhooks_out.attempt). A failed attempt is not a failed job: the delivery records it and its
next try (the schedule's sweep queues it when due)."""

from __future__ import annotations

from typing import Any

from billing import webhooks_out
from jobs.registry import JobContext, JobError, job_handler


@job_handler(webhooks_out.DELIVERY_KIND, cluster="default", description="Sends an event to a webhook endpoint.")
def deliver_webhook(ctx: JobContext) -> dict[str, Any]:
    """POST one delivery's event to its endpoint, signed, and record the answer."""
    try:
        delivery_id = int(ctx.payload.get("delivery_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no webhook delivery.") from None
    return webhooks_out.attempt(delivery_id=delivery_id)
