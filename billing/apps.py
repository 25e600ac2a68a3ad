from __future__ import annotations

from typing import Any

from django.apps import AppConfig

from tenants.dashboard import Badge, register_badge


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import credits
        from jobs.services import job_finished, register_enqueue_hook

        register_badge("billing.plan", plan_badge)
        # Credits are a property of jobs: a costed kind reserves when it is queued, settles or releases when it ends.
        register_enqueue_hook("billing.credits", credits.on_job_queued)
        job_finished.connect(credits.on_job_finished, dispatch_uid="billing.credits.settle")
        from billing import (
            onboarding,
            orders,  # noqa: F401  (registers the client erasure step: orders are anonymised)
        )

        onboarding.register()  # the trial's credits on sign-up, and the checklist's payments step


def plan_badge(request: Any) -> Badge:
    """The dashboard's plan badge (tenants.dashboard): the same words as the billing page, linked to it."""
    from django.urls import reverse

    from billing.models import StudioBilling
    from billing.plans import plan_label

    row = StudioBilling.objects.filter().only("plan", "subscription_status").first()
    label = plan_label(row.plan, row.subscription_status) if row else plan_label("")
    return Badge(label=label, url=reverse("billing"), tone="" if row and row.plan else "warn")
