from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

WEBHOOK_SCHEDULE_NAME = "billing.send_due_webhooks"
WEBHOOK_FUNC = "billing.tasks.send_due_webhooks"


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import credits
        from billing.dashboard import register_dashboard
        from billing.views_orders import FULFILMENT_ROLES
        from jobs.services import job_finished, register_enqueue_hook
        from tenants.media import register_media

        # Print files: to the staff who make and send prints, and to API keys (a lab's integration fetches them).
        register_media("billing.orderitem", "print_file", roles=FULFILMENT_ROLES, api_keys=True)
        register_dashboard()  # the plan badge, "This month", orders to refund, payments (tenants.dashboard)
        # Credits are a property of jobs: a costed kind reserves when it is queued, settles or releases when it ends.
        register_enqueue_hook("billing.credits", credits.on_job_queued)
        job_finished.connect(credits.on_job_finished, dispatch_uid="billing.credits.settle")
        from billing import (
            onboarding,
            orders,  # noqa: F401  (registers the client erasure step: orders are anonymised)
        )

        onboarding.register()  # the trial's credits on sign-up, and the checklist's payments step

        # Outgoing webhooks (billing.webhooks_out): the events of the apps below, sent to the studio's endpoints.
        from billing import webhook_events
        from clients.signals import client_erased
        from galleries.signals import gallery_shared, gallery_viewed

        job_finished.connect(webhook_events.on_job_finished, dispatch_uid="billing.webhooks_out.jobs")
        gallery_shared.connect(webhook_events.on_gallery_shared, dispatch_uid="billing.webhooks_out.shared")
        gallery_viewed.connect(webhook_events.on_gallery_viewed, dispatch_uid="billing.webhooks_out.viewed")
        client_erased.connect(webhook_events.on_client_erased, dispatch_uid="billing.webhooks_out.erased")
        post_migrate.connect(ensure_webhook_schedule, sender=self, dispatch_uid="billing.webhooks_out.schedule")


def ensure_webhook_schedule(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the due webhook deliveries (retries, waits) are queued every minute (django-q2 Schedule,
    found by name: idempotent; platform data)."""
    from django.db import connections
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    Schedule.objects.using(using).get_or_create(
        name=WEBHOOK_SCHEDULE_NAME,
        defaults={"func": WEBHOOK_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
