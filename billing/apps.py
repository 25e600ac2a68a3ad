from __future__ import annotations

from typing import Any

from django.apps import AppConfig

from tenants.dashboard import Badge, register_badge


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        register_badge("billing.plan", plan_badge)
        from billing import orders  # noqa: F401  (registers the client erasure step: orders are anonymised)


def plan_badge(request: Any) -> Badge:
    """The dashboard's plan badge (tenants.dashboard): the same words as the billing page, linked to it."""
    from django.urls import reverse

    from billing.models import StudioBilling
    from billing.plans import plan_label

    row = StudioBilling.objects.filter().only("plan", "subscription_status").first()
    label = plan_label(row.plan, row.subscription_status) if row else plan_label("")
    return Badge(label=label, url=reverse("billing"), tone="" if row and row.plan else "warn")
