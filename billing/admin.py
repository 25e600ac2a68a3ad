"""Billing in the platform admin: the ledger and the webhook events are read-only (append-only records); the
gallery orders (with their lines and print fulfilment), coupons and sales are read-only here too: they are made
and changed on the studio's pages and the API, where Stripe's twins, the client's messages and the webhooks follow
each change (billing.orders, billing.coupons, billing.prints). The admin is where the operator and the studio's
managers look one up."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from billing.models import (
    Coupon,
    CreditEntry,
    GallerySale,
    Order,
    OrderItem,
    PrintFulfilment,
    StripeEvent,
    StudioBilling,
)
from tenants.admin_scoping import PlatformOnlyAdmin, ReadOnlyInline, StudioScopedAdmin
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


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ["portrait", "size", "product_name", "quantity", "unit_price", "crop", "print_size"]
    readonly_fields = fields


class PrintFulfilmentInline(ReadOnlyInline):
    model = PrintFulfilment
    fields = ["provider", "status", "carrier", "tracking_number", "tracking_url", "placed_at", "shipped_at"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(_ReadOnly, StudioScopedAdmin):
    """Gallery orders (money and the buyer's address: owners, managers and the operator)."""

    viewer_roles = MANAGING_ROLES
    list_display = ["id", "studio", "status", "amount", "currency", "coupon", "email", "created_at", "paid_at"]
    list_filter = ["status", "currency"]
    search_fields = ["email", "checkout_session_id", "payment_intent_id"]
    list_select_related = ["studio", "coupon"]
    inlines = [OrderItemInline, PrintFulfilmentInline]
    exclude = ["created_by_session"]


@admin.register(Coupon)
class CouponAdmin(_ReadOnly, StudioScopedAdmin):
    viewer_roles = MANAGING_ROLES
    list_display = ["code", "studio", "percent_off", "amount_off", "applies_to", "max_uses", "ends_at", "is_active"]
    list_filter = ["is_active", "applies_to"]
    search_fields = ["code", "description", "stripe_promotion_code_id"]
    list_select_related = ["studio"]


@admin.register(GallerySale)
class GallerySaleAdmin(_ReadOnly, StudioScopedAdmin):
    viewer_roles = MANAGING_ROLES
    list_display = ["name", "studio", "gallery", "percent_off", "applies_to", "starts_at", "ends_at"]
    list_filter = ["applies_to"]
    search_fields = ["name"]
    list_select_related = ["studio", "gallery"]
