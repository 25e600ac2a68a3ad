"""Billing with Stripe: studios pay the platform (a plan with monthly GPU credits), clients pay their studio
(orders in galleries, paid through Stripe Checkout as destination charges to the studio's connected account).

Money is where a bug costs the most: the credit ledger is append-only (a balance is a sum, never an updated
number), every Stripe event is stored once by its id before it is handled, and every object created at Stripe
carries an idempotency key recorded here.

Tenant-owned: `StudioBilling`, `CreditEntry`, `PriceSheet`, `Package`, `Order`, `OrderItem`.
Platform-level: `StripeEvent` (a webhook arrives before anyone knows its studio; `studio` is filled in once it is
resolved).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models

from tenants.models import Studio, TenantOwned


class StudioBilling(TenantOwned):
    """A studio's Stripe identity: its customer and subscription (the platform's plan), and its connected account
    (where its clients' payments go). One row per studio, created on first use."""

    stripe_customer_id = models.CharField(max_length=100, blank=True)
    plan = models.CharField(max_length=40, blank=True, help_text="A key of settings.BILLING_PLANS.")
    subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=30, blank=True, help_text="Stripe's status, as last seen.")
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    subscription_event_at = models.DateTimeField(
        null=True, blank=True, help_text="Stripe's time of the last subscription event applied (older are ignored)."
    )
    connect_account_id = models.CharField(max_length=100, blank=True)
    charges_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studio billing"
        constraints = [models.UniqueConstraint(fields=["studio"], name="studiobilling_one_per_studio")]

    def __str__(self) -> str:
        return f"Billing of studio {self.studio_id}"


class CreditEntry(TenantOwned):
    """One line of the studio's GPU credit ledger (append-only: rows are never updated or deleted). The balance is
    the sum of `amount`. A job reserves credits when it is queued (negative), and settles on what it used (the
    difference back) or is released (the whole reservation back) when it fails or is cancelled."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Monthly credits of the plan"
        PURCHASE = "purchase", "Credits bought"
        RESERVE = "reserve", "Reserved for a job"
        SETTLE = "settle", "Settled on what the job used"
        RELEASE = "release", "Released (job failed or cancelled)"
        OVERAGE = "overage", "Overage billed"
        ADJUSTMENT = "adjustment", "Adjustment by the platform"
        EXPIRE = "expire", "Unused credits of the period expired"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.IntegerField(help_text="Credits: positive adds, negative takes.")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reference = models.CharField(
        max_length=120, blank=True, help_text="What caused it: a Stripe invoice or event id, a period, a note."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "credit entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "-created_at"], name="credit_studio_time"),
            models.Index(fields=["studio", "job"], name="credit_studio_job"),
        ]
        constraints = [
            # A job reserves once, and settles or releases once.
            models.UniqueConstraint(
                fields=["studio", "job", "kind"],
                condition=models.Q(kind__in=["reserve", "settle", "release"]),
                name="credit_one_per_job_and_kind",
            ),
            # A Stripe-caused entry (invoice, event) is written once.
            models.UniqueConstraint(
                fields=["studio", "kind", "reference"],
                condition=models.Q(kind__in=["grant", "purchase", "overage"]),
                name="credit_one_per_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.amount:+d}"


class StripeEvent(models.Model):
    """A Stripe webhook event, stored once by its id (a replay or duplicate changes nothing) before it is handled
    in the same transaction. Platform-level: `studio` is set once the handler knows whose it is."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    account = models.CharField(max_length=100, blank=True, help_text="The connected account (Connect events).")
    created = models.DateTimeField(help_text="Stripe's creation time of the event.")
    payload = models.JSONField()
    # Not a tenant-owned row (no row-level security: it is written before its studio is known), so its column
    # is not named `studio_id`, the project's marker of tenant-owned tables (tests/tenants/test_rls.py).
    studio = models.ForeignKey(
        Studio, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_column="resolved_studio_id"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True, help_text="What the handler did, or why it ignored it.")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["type", "-received_at"], name="stripeevent_type")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class PriceSheet(TenantOwned):
    """What the studio's clients pay: a price per portrait, in one currency (one row per studio)."""

    currency = models.CharField(max_length=3, default="eur", help_text="ISO 4217, lower case (Stripe's form).")
    price_per_portrait = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("9.90"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["studio"], name="pricesheet_one_per_studio")]

    def __str__(self) -> str:
        return f"Price sheet of studio {self.studio_id}"


class Package(TenantOwned):
    """A bundle on the price sheet: `count` portraits of a gallery for `price`, or all of them (count 0)."""

    name = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=5, help_text="Portraits included; 0 means all of the gallery.")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price", "id"]

    def __str__(self) -> str:
        return self.name


class Order(TenantOwned):
    """A client's purchase in a gallery: a Checkout Session as a destination charge to the studio's connected
    account with the platform's application fee. Paid → download entitlements; refunded → revoked."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for payment"
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"
        EXPIRED = "expired", "Checkout expired"
        CANCELLED = "cancelled", "Cancelled"

    # Empty once the gallery's client was erased: the order stays, anonymised, as a financial record
    # (billing.orders.anonymise_orders_of_client).
    gallery = models.ForeignKey(
        "galleries.Gallery", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    package = models.ForeignKey(Package, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=10, decimal_places=2, help_text="What the client pays.")
    application_fee = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    checkout_session_id = models.CharField(max_length=200, blank=True, db_index=True)
    payment_intent_id = models.CharField(max_length=200, blank=True, db_index=True)
    connect_account_id = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True, help_text="The buyer's email, from Stripe.")
    created_by_session = models.CharField(max_length=64, blank=True, help_text="A hash of the gallery session.")
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["studio", "gallery", "-created_at"], name="order_studio_gallery")]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.get_status_display()})"


class OrderItem(TenantOwned):
    """One portrait of an order, at a size, with its share of the price."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # Empty once the portrait was deleted with its client's erasure; size and price stay.
    portrait = models.ForeignKey(
        "generation.Portrait", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    size = models.CharField(max_length=10, default="full")
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["studio", "order", "portrait", "size"], name="orderitem_unique"),
        ]

    def __str__(self) -> str:
        return f"Portrait {self.portrait_id} in order {self.order_id}"


__all__ = [
    "CreditEntry",
    "Order",
    "OrderItem",
    "Package",
    "PriceSheet",
    "StripeEvent",
    "StudioBilling",
]
