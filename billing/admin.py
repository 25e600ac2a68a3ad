"""Billing in the platform admin: the ledger and the webhook events are read-only (append-only records)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from billing.models import CreditEntry, StripeEvent, StudioBilling
from tenants.admin_scoping import PlatformOnlyAdmin, StudioScopedAdmin
from tenants.models import MANAGING_ROLES


class _ReadOnly:
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(_ReadOnly, PlatformOnlyAdmin):
    """Platform-level (superusers only: the platform admin)."""

    list_display = ["event_id", "type", "account", "studio", "received_at", "processed_at", "outcome"]
    list_filter = ["type"]
    search_fields = ["event_id", "account"]


@admin.register(CreditEntry)
class CreditEntryAdmin(_ReadOnly, StudioScopedAdmin):
    viewer_roles = MANAGING_ROLES  # money: owners and managers
    list_display = ["studio", "kind", "amount", "job", "reference", "created_at"]
    list_filter = ["kind"]
    search_fields = ["reference"]


@admin.register(StudioBilling)
class StudioBillingAdmin(_ReadOnly, StudioScopedAdmin):
    viewer_roles = MANAGING_ROLES
    list_display = ["studio", "plan", "subscription_status", "balance", "current_period_end", "stripe_customer_id"]
    search_fields = ["stripe_customer_id", "subscription_id", "connect_account_id"]
