"""Billing with Stripe: studios pay the platform (a plan with monthly GPU credits), clients pay their studio
(orders in galleries, paid through Stripe Checkout as destination charges to the studio's connected account).

Money is where a bug costs the most: the credit ledger is append-only and stays the truth (a balance is its sum);
`StudioBilling.balance` is that sum kept running, moved in the same transaction as every entry is written, so that
reading it costs one row whatever the ledger's size (`billing.balances` recomputes and compares); every Stripe
event is stored once by its id before it is handled, and every object created at Stripe carries an idempotency
key recorded here.

`CreditUsageDay` is the credits used per day (reservations less what was given back), kept running the same way,
so the billing page's 30 days of usage read at most 31 rows.

Tenant-owned: `StudioBilling`, `CreditEntry`, `CreditUsageDay`, `PriceSheet`, `Package`, `Order`, `OrderItem`,
`WebhookEndpoint`, `WebhookDelivery` (outgoing webhooks, billing.webhooks_out), `PrintProduct` and
`PrintFulfilment` (prints, billing.prints and billing.fulfilment), `Coupon`, `CouponProduct` and `GallerySale`
(billing.coupons).
Platform-level: `StripeEvent` (a webhook arrives before anyone knows its studio; `studio` is filled in once it is
resolved).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, models, router, transaction
from django.db.models import F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Studio, TenantManager, TenantOwned, TenantQuerySet


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
    balance = models.BigIntegerField(
        default=0,
        editable=False,
        help_text="GPU credits: the sum of the studio's ledger, kept running (moved only by ledger writes).",
    )
    charges_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studio billing"
        constraints = [models.UniqueConstraint(fields=["studio"], name="studiobilling_one_per_studio")]

    def __str__(self) -> str:
        return f"Billing of studio {self.studio_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """An update never writes `balance` unless asked to by name: a row read before a ledger write and saved
        after it must not put its stale balance back (ledger writes move it with F(), see `add_to_balance`)."""
        if not self._state.adding and not args and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name != "balance"
            ]
        super().save(*args, **kwargs)


def add_to_balance(*, studio_id: int, amount: int, using: str = "default") -> None:
    """Move the studio's running balance by `amount`, in the caller's transaction (the one that writes the ledger
    entries): one UPDATE with an F() expression, so concurrent writers never lose one another's change (the row
    lock it takes serialises them). A studio without a billing row yet gets one, made from its ledger's sum (which
    already holds the caller's new entries); when another transaction made it meanwhile, the update is retried."""
    rows = StudioBilling.objects.db_manager(using).filter(studio_id=studio_id)
    if rows.update(balance=F("balance") + amount):
        return
    total = CreditEntry.objects.db_manager(using).filter(studio_id=studio_id).aggregate(total=Sum("amount"))["total"]
    try:
        with transaction.atomic(using=using):
            StudioBilling(studio_id=studio_id, balance=int(total or 0)).save(using=using)
    except IntegrityError:  # made by a concurrent transaction, which has committed: it did not count our entries
        rows.update(balance=F("balance") + amount)


class CreditEntryQuerySet(TenantQuerySet):
    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list:
        """Insert the entries and move each studio's running balance by their sum, in one transaction. With
        `ignore_conflicts` some rows may not be written, so those studios' balances are recomputed from the
        ledger instead (under their billing row's lock)."""
        if kwargs.get("update_conflicts"):
            raise ValueError("The credit ledger is append-only: bulk_create(update_conflicts=True) is refused.")
        objs = list(objs)
        using = self.db
        with transaction.atomic(using=using):
            created = super().bulk_create(objs, *args, **kwargs)
            totals: dict[int, int] = {}
            usage: dict[int, dict[date, int]] = {}
            for obj in objs:
                totals[obj.studio_id] = totals.get(obj.studio_id, 0) + int(obj.amount)
                if obj.kind in USAGE_KINDS:
                    days = usage.setdefault(obj.studio_id, {})
                    day = usage_day(obj.created_at)
                    days[day] = days.get(day, 0) - int(obj.amount)
            # A fixed order (each studio's billing row, then its days): no deadlock between two bulk writers.
            for studio_id, amount in sorted(totals.items()):
                add_to_balance(studio_id=studio_id, amount=amount, using=using)
                if kwargs.get("ignore_conflicts"):
                    recompute_balance(studio_id=studio_id, using=using)
                for day, used in sorted(usage.get(studio_id, {}).items()):
                    add_to_usage(studio_id=studio_id, day=day, used=used, using=using)
                    if kwargs.get("ignore_conflicts"):
                        recompute_usage(studio_id=studio_id, day=day, using=using)
        return created


class CreditEntry(TenantOwned):
    """One line of the studio's GPU credit ledger (append-only: rows are never updated or deleted). The balance is
    the sum of `amount`, kept running in `StudioBilling.balance` by `save` and `bulk_create`. A job reserves credits
    when it is queued (negative), and settles on what it used (the difference back) or is released (the whole
    reservation back) when it fails or is cancelled."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Monthly credits of the plan")
        PURCHASE = "purchase", _("Credits bought")
        RESERVE = "reserve", _("Reserved for a job")
        SETTLE = "settle", _("Settled on what the job used")
        RELEASE = "release", _("Released (job failed or cancelled)")
        OVERAGE = "overage", _("Overage billed")
        ADJUSTMENT = "adjustment", _("Adjustment by the platform")
        EXPIRE = "expire", _("Unused credits of the period expired")
        TRIAL = "trial", _("Trial credits on sign-up")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.IntegerField(help_text="Credits: positive adds, negative takes.")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reference = models.CharField(
        max_length=120, blank=True, help_text="What caused it: a Stripe invoice or event id, a period, a note."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantManager.from_queryset(CreditEntryQuerySet)()

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

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Append the entry and move the studio's running balance by its amount, in one transaction. The ledger
        is append-only: saving an entry that is already stored is refused."""
        if not self._state.adding:
            raise ValueError("The credit ledger is append-only: a stored entry is never changed.")
        self._check_studio_for_write()
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            add_to_balance(studio_id=self.studio_id, amount=int(self.amount), using=using)
            if self.kind in USAGE_KINDS:
                add_to_usage(
                    studio_id=self.studio_id, day=usage_day(self.created_at), used=-int(self.amount), using=using
                )


def recompute_balance(*, studio_id: int, fix: bool = True, using: str = "default") -> tuple[int, int] | None:
    """The studio's running balance and its ledger's sum, read under its billing row's lock (so no ledger write
    interleaves); with `fix`, the balance is set to the sum when they differ. Returns (balance as it was, ledger
    sum), or None when the studio has no billing row."""
    with transaction.atomic(using=using):
        row = (
            StudioBilling.objects.db_manager(using)
            .select_for_update()
            .filter(studio_id=studio_id)
            .values_list("pk", "balance")
            .first()
        )
        if row is None:
            return None
        entries = CreditEntry.objects.db_manager(using).filter(studio_id=studio_id)
        total = int(entries.aggregate(total=Sum("amount"))["total"] or 0)
        if fix and total != row[1]:
            StudioBilling.objects.db_manager(using).filter(pk=row[0]).update(balance=total)
        return int(row[1]), total


# --- Credits used per day, kept running -------------------------------------------------------------------------

# The kinds that count as use (with the opposite sign: a reservation of 6 is 6 used, a release of 6 gives them back).
USAGE_KINDS = ("reserve", "settle", "release")


def usage_day(moment: datetime) -> date:
    """The day an entry's use counts on: its date in the default time zone (settings.TIME_ZONE, UTC), as
    `TruncDate` gave it on the ledger (no request activates another time zone)."""
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def ledger_day() -> TruncDate:
    """`usage_day` in SQL, for grouping the ledger."""
    return TruncDate("created_at", tzinfo=timezone.get_default_timezone())


class CreditUsageDay(TenantOwned):
    """Credits a studio used on one day: minus the sum of its RESERVE, SETTLE and RELEASE entries of that day, kept
    running with the ledger (`add_to_usage`, in the entry's transaction) so that reading a month of usage is at
    most 31 rows whatever the ledger's size. The ledger stays the truth (`billing.balances.check_usage`)."""

    day = models.DateField()
    used = models.IntegerField(default=0, help_text="Credits used that day: reservations less what was given back.")

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "credit usage days"
        indexes = [models.Index(fields=["studio", "-day"], name="creditusage_studio_day")]
        constraints = [models.UniqueConstraint(fields=["studio", "day"], name="creditusage_one_per_day")]

    def __str__(self) -> str:
        return f"{self.day}: {self.used} used"


def ledger_usage(*, studio_id: int, day: date, using: str = "default") -> int:
    """The studio's use on `day` as its ledger says (the truth the rollup is kept equal to)."""
    entries = (
        CreditEntry.objects.db_manager(using)
        .filter(studio_id=studio_id, kind__in=USAGE_KINDS)
        .annotate(day=ledger_day())
        .filter(day=day)
    )
    return -int(entries.aggregate(total=Sum("amount"))["total"] or 0)


def add_to_usage(*, studio_id: int, day: date, used: int, using: str = "default") -> None:
    """Move the studio's use of `day` by `used`, in the caller's transaction (the one writing the entries), as
    `add_to_balance` moves the balance: one UPDATE with F(), so concurrent writers never lose one another's change.
    A day without its row yet gets one holding `used` (the rollup is complete: the migration filled every day, and
    every counted write since went through here), made in a savepoint; when a concurrent transaction made it
    meanwhile, the update is retried. No aggregate over the ledger: O(1) under the studio's lock."""
    rows = CreditUsageDay.objects.db_manager(using).filter(studio_id=studio_id, day=day)
    if rows.update(used=F("used") + used):
        return
    try:
        with transaction.atomic(using=using):
            CreditUsageDay(studio_id=studio_id, day=day, used=used).save(using=using)
    except IntegrityError:  # made by a concurrent transaction, which has committed: it did not count our entries
        rows.update(used=F("used") + used)


def recompute_usage(
    *, studio_id: int, day: date, fix: bool = True, using: str = "default"
) -> tuple[int | None, int | None]:
    """The studio's kept use of `day` and its ledger's, read under the day row's lock (a ledger write of that day
    waits for it); with `fix`, the row is set to the ledger's figure (made when missing with use, removed when
    the ledger has no entry that day). Returns (kept use, ledger's use), each None where there is no row, or
    no counted entry that day."""
    with transaction.atomic(using=using):
        rows = CreditUsageDay.objects.db_manager(using).filter(studio_id=studio_id, day=day)
        kept = rows.select_for_update().values_list("used", flat=True).first()
        entries = (
            CreditEntry.objects.db_manager(using)
            .filter(studio_id=studio_id, kind__in=USAGE_KINDS)
            .annotate(day=ledger_day())
            .filter(day=day)
        )
        has_entries = entries.exists()
        total = ledger_usage(studio_id=studio_id, day=day, using=using)
        if fix:
            if kept is None and has_entries:
                try:
                    with transaction.atomic(using=using):
                        CreditUsageDay(studio_id=studio_id, day=day, used=total).save(using=using)
                except IntegrityError:  # made meanwhile by a ledger write, now committed: recount under its lock
                    rows.select_for_update().values_list("used", flat=True).first()
                    rows.update(used=ledger_usage(studio_id=studio_id, day=day, using=using))
            elif kept is not None and not has_entries:
                rows.delete()
            elif kept is not None and kept != total:
                rows.update(used=total)
        return (None if kept is None else int(kept)), (total if has_entries else None)


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
    print_shipping = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), help_text="Shipping of a print order (0: free)."
    )
    ship_to_countries = models.JSONField(
        default=list, blank=True, help_text="ISO 3166 country codes prints are shipped to (Checkout asks for one)."
    )
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


def print_file_path(instance: Any, filename: str) -> str:
    """Private storage, naming no person: prints/<studio>/<random>.jpg."""
    return f"prints/{instance.studio_id}/{uuid.uuid4().hex}.jpg"


class PrintProduct(TenantOwned):
    """A print the studio sells from its galleries (billing.prints): a paper size and finish, framed or canvas, at
    a price. A portrait is offered a product only when its pixels, cropped to the product, reach `min_dpi` at the
    product's size; the print-ready file is made at `PRINT_DPI` (300)."""

    class Kind(models.TextChoices):
        PAPER = "paper", _("Paper print")
        FRAMED = "framed", _("Framed print")
        CANVAS = "canvas", _("Canvas")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAPER)
    finish = models.CharField(max_length=60, blank=True, help_text="Lustre, matte, black frame, …")
    width_mm = models.PositiveIntegerField(help_text="The print's short side, in millimetres.")
    height_mm = models.PositiveIntegerField(help_text="The print's long side, in millimetres.")
    crop_ratio = models.CharField(
        max_length=11,
        blank=True,
        help_text="The image's ratio on the print, as W:H (e.g. 1:1 for a square image with white margins); "
        "empty: the print's own ratio, edge to edge.",
    )
    min_dpi = models.PositiveIntegerField(
        default=150, help_text="The fewest portrait pixels per inch of print this product accepts."
    )
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price", "id"]
        indexes = [models.Index(fields=["studio", "is_active"], name="printproduct_active")]

    def __str__(self) -> str:
        return self.name


class Order(TenantOwned):
    """A client's purchase in a gallery: a Checkout Session as a destination charge to the studio's connected
    account with the platform's application fee. Paid → download entitlements; refunded → revoked."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")
        EXPIRED = "expired", _("Checkout expired")
        CANCELLED = "cancelled", _("Cancelled")

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
    shipping_amount = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), help_text="Shipping, part of `amount` (prints)."
    )
    # A coupon (billing.coupons): amount = subtotal - discount + shipping_amount.
    coupon = models.ForeignKey("Coupon", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders")
    subtotal = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), help_text="The items at the prices charged."
    )
    discount = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), help_text="The coupon's amount off."
    )
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
        indexes = [
            models.Index(fields=["studio", "gallery", "-created_at"], name="order_studio_gallery"),
            # The dashboard's payments, this month's sales and the paid orders to refund (billing.selectors).
            models.Index(
                fields=["studio", "-paid_at", "-id"],
                name="order_studio_paid",
                condition=models.Q(paid_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.get_status_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new order made without a subtotal or a discount (no coupon: code that sets `amount` only) gets the
        subtotal that keeps amount = subtotal - discount + shipping_amount."""
        if self._state.adding and not self.subtotal and not self.discount and self.amount is not None:
            self.subtotal = Decimal(self.amount) - Decimal(self.shipping_amount or 0)
        super().save(*args, **kwargs)


class OrderItem(TenantOwned):
    """One portrait of an order, at a size, with its share of the price."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # Empty once the portrait was deleted with its client's erasure; size and price stay.
    portrait = models.ForeignKey(
        "generation.Portrait", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    size = models.CharField(max_length=10, default="full", help_text="The download's size; `print` for a print.")
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # A print (billing.prints): the product, the crop (fractions of the portrait: x, y, w, h), how many, and the
    # print-ready file made once the order is paid. Empty product: a download.
    product = models.ForeignKey(PrintProduct, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    product_name = models.CharField(max_length=160, blank=True, help_text="The product as sold (name, size).")
    crop = models.JSONField(default=dict, blank=True)
    quantity = models.PositiveSmallIntegerField(default=1)
    print_file = models.FileField(upload_to=print_file_path, max_length=255, blank=True)
    print_size = models.JSONField(default=list, blank=True, help_text="[width, height] of the print file, px.")

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["studio", "order", "portrait", "size"],
                condition=models.Q(product__isnull=True),
                name="orderitem_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Portrait {self.portrait_id} in order {self.order_id}"


class PrintFulfilment(TenantOwned):
    """How a paid print order reaches the client: who makes it (`provider`, a key of billing.fulfilment's
    registry: the studio itself first, a lab's API later), where it goes, and where it stands. Each step is told
    to the client (clients.messages) and to the studio's webhooks."""

    class Status(models.TextChoices):
        PLACED = "placed", _("Placed")
        IN_PRODUCTION = "in_production", _("In production")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="fulfilment")
    provider = models.CharField(max_length=30, default="studio")
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.PLACED)
    # The address Checkout collected (Stripe's form: line1, line2, postal_code, city, state, country). Cleared
    # with the client's erasure (billing.orders.anonymise_orders_of_client).
    ship_name = models.CharField(max_length=200, blank=True)
    ship_address = models.JSONField(default=dict, blank=True)
    ship_phone = models.CharField(max_length=40, blank=True)
    carrier = models.CharField(max_length=60, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    provider_ref = models.CharField(max_length=200, blank=True, help_text="The lab's own id of the order.")
    files_ready_at = models.DateTimeField(null=True, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    in_production_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-order__created_at", "-id"]
        indexes = [models.Index(fields=["studio", "status"], name="printfulfilment_status")]

    def __str__(self) -> str:
        return f"Fulfilment of order {self.order_id} ({self.get_status_display()})"


class Coupon(TenantOwned):
    """A code a client types in the gallery's cart (billing.coupons): a percentage or a fixed amount off, with
    limits (per client, total uses, dates, minimum order, which items). Stripe holds its twin on the platform
    account (a Coupon and a Promotion Code, made with it), used by Checkout where it can express the coupon's
    rules; otherwise each order gets a single-use Stripe coupon of the discount computed here. A use counts when
    the order is paid (a pending order of the last day holds one)."""

    class AppliesTo(models.TextChoices):
        ALL = "all", _("Everything")
        DIGITAL = "digital", _("Digital downloads")
        PRINTS = "prints", _("Prints")
        PRODUCTS = "products", _("Some print products")

    code = models.CharField(max_length=40, help_text="Upper case; unique in the studio among active codes.")
    description = models.CharField(max_length=200, blank=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="In `currency` (the price sheet's)."
    )
    currency = models.CharField(max_length=3, default="eur", help_text="The price sheet's currency when created.")
    applies_to = models.CharField(max_length=10, choices=AppliesTo.choices, default=AppliesTo.ALL)
    products = models.ManyToManyField(PrintProduct, through="CouponProduct", blank=True, related_name="+")
    min_order = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Paid orders in all; empty: no limit.")
    max_uses_per_client = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    stripe_coupon_id = models.CharField(max_length=100, blank=True)
    stripe_promotion_code_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["studio", "code"], condition=models.Q(is_active=True), name="coupon_active_code_unique"
            ),
            models.CheckConstraint(
                condition=(models.Q(percent_off__isnull=False, amount_off__isnull=True))
                | (models.Q(percent_off__isnull=True, amount_off__isnull=False)),
                name="coupon_percent_xor_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CouponProduct(TenantOwned):
    """A print product a coupon applies to (`Coupon.products`, when it applies to some products)."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(PrintProduct, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["studio", "coupon", "product"], name="couponproduct_unique")]

    def __str__(self) -> str:
        return f"Product {self.product_id} of coupon {self.coupon_id}"


class GallerySale(TenantOwned):
    """A time-limited percentage off the unit prices of one gallery, or of every gallery of the studio (no
    gallery). The prices shown and charged are the sale prices (the best single sale applies); a coupon then
    applies on top of them."""

    class AppliesTo(models.TextChoices):
        ALL = "all", _("Everything")
        DIGITAL = "digital", _("Digital downloads")
        PRINTS = "prints", _("Prints")

    name = models.CharField(max_length=100)
    gallery = models.ForeignKey("galleries.Gallery", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    percent_off = models.DecimalField(max_digits=5, decimal_places=2)
    applies_to = models.CharField(max_length=10, choices=AppliesTo.choices, default=AppliesTo.ALL)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["studio", "ends_at"], name="gallerysale_studio_end")]

    def __str__(self) -> str:
        return self.name


class WebhookEvent(models.TextChoices):
    """What a studio's outgoing webhooks tell of (billing.webhooks_out, docs/webhooks.md)."""

    SET_VALIDATED = "photo_set.validated", _("Photo set validated")
    DOUBLE_READY = "double.ready", _("Digital double ready")
    DOUBLE_FAILED = "double.failed", _("Digital double failed")
    RUN_FINISHED = "run.finished", _("Render run finished")
    GALLERY_SHARED = "gallery.shared", _("Gallery shared")
    GALLERY_VIEWED = "gallery.viewed", _("Gallery viewed")
    ORDER_PAID = "order.paid", _("Order paid")
    ORDER_REFUNDED = "order.refunded", _("Order refunded")
    ORDER_SHIPPED = "order.shipped", _("Print order shipped")
    CLIENT_ERASED = "client.erased", _("Client erased")


class WebhookEndpoint(TenantOwned):
    """A URL of one of the studio's other tools, told of the events it chose, each request signed with the
    endpoint's secret (HMAC-SHA256). After a roll the previous secret still signs too for
    `billing.webhooks_out.PREVIOUS_SECRET_HOURS` hours, so the receiver can switch without losing events."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="The WebhookEvent values it receives.")
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey("tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["studio", "is_active"], name="webhookendpoint_active")]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookDelivery(TenantOwned):
    """One event sent (or to send) to one endpoint: its payload as sent, its attempts and their outcome. A replay
    is a new delivery of the same event id (`replay_of` names the first)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        QUEUED = "queued", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=40, choices=WebhookEvent.choices)
    object_ref = models.CharField(max_length=60, help_text="The object it is about, e.g. order:12 (kept in order).")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=500, blank=True, help_text="The start of the last answer.")
    error = models.CharField(max_length=300, blank=True, help_text="Why the last attempt failed, when no answer.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replays")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "endpoint", "-created_at"], name="webhookdelivery_endpoint"),
            # The ordering check: an earlier unfinished delivery of the same object to the same endpoint.
            models.Index(fields=["studio", "endpoint", "object_ref", "id"], name="webhookdelivery_object"),
            # The sweep's cross-studio scan of what is due.
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhookdelivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to endpoint {self.endpoint_id} ({self.get_status_display()})"


__all__ = [
    "Coupon",
    "CouponProduct",
    "CreditEntry",
    "CreditUsageDay",
    "GallerySale",
    "Order",
    "OrderItem",
    "Package",
    "PriceSheet",
    "PrintFulfilment",
    "PrintProduct",
    "StripeEvent",
    "StudioBilling",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
