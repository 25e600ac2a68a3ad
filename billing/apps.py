from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import credits
        from billing.dashboard import register_dashboard
        from jobs.services import job_finished, register_enqueue_hook

        register_dashboard()  # the plan badge, "This month", orders to refund, payments (tenants.dashboard)
        # Credits are a property of jobs: a costed kind reserves when it is queued, settles or releases when it ends.
        register_enqueue_hook("billing.credits", credits.on_job_queued)
        job_finished.connect(credits.on_job_finished, dispatch_uid="billing.credits.settle")
        from billing import (
            onboarding,
            orders,  # noqa: F401  (registers the client erasure step: orders are anonymised)
        )

        onboarding.register()  # the trial's credits on sign-up, and the checklist's payments step
