"""The studio's plan at Stripe: customer, subscription, plan changes, invoices, overage, and the webhook handlers
of the platform's subscription events. Every call that creates something carries an idempotency key.

Calls to Stripe happen outside of database locks; their results are written in short transactions. Webhooks are
the source of truth for status and credits: `invoice.paid` grants the plan's monthly credits once per invoice,
`customer.subscription.*` keep plan, status and period (ignoring events older than the last one applied, and
never reviving a cancelled subscription).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from billing import credits, plans, stripe_client
from billing.models import CreditEntry, StripeEvent, StudioBilling
from billing.webhooks import _get, event_time, for_studio, handles, studio_for_customer, studio_from_metadata
from tenants.models import Studio
from tenants.refusals import Refused

log = structlog.get_logger("billing.subscriptions")

ENDED = ("canceled", "incomplete_expired")


class BillingError(Refused):
    """A billing action that cannot be done; `message` is for people."""


def get_billing() -> StudioBilling:
    """The current studio's billing row, created on first use."""
    row = StudioBilling.objects.filter().first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return StudioBilling.objects.create()
    except IntegrityError:
        return StudioBilling.objects.get()


def _require_stripe() -> None:
    """A clear 503 that says what to set, instead of a call that can only fail, when Stripe isn't configured."""
    if not stripe_client.is_configured():
        raise BillingError(_(stripe_client.SETUP_HINT), 503)


def _stripe_error(exc: Exception) -> BillingError:
    log.warning("stripe_call_failed", error=str(exc))
    return BillingError(_("Stripe could not be reached or refused the request; please try again in a moment."), 502)


def ensure_customer(*, studio: Studio, email: str = "") -> StudioBilling:
    """The studio's Stripe customer, created once (idempotency key per studio)."""
    billing = get_billing()
    if billing.stripe_customer_id:
        return billing
    _require_stripe()
    s = stripe_client.client()
    try:
        customer = s.Customer.create(
            name=studio.name,
            email=email or None,
            metadata={"studio_id": str(studio.pk)},
            idempotency_key=stripe_client.idempotency_key("customer", studio.pk),
        )
    except s.StripeError as exc:
        raise _stripe_error(exc) from None
    with transaction.atomic():
        locked = StudioBilling.objects.select_for_update().get(pk=billing.pk)
        if not locked.stripe_customer_id:
            locked.stripe_customer_id = customer["id"]
            locked.save(update_fields=["stripe_customer_id", "updated_at"])
    log.info("stripe_customer_created", customer_id=customer["id"])
    return locked


def _subscription_items(price_id: str) -> list[dict[str, Any]]:
    # localstripe knows the legacy `plan` (a plan id works where a price id is expected at Stripe, not back).
    if getattr(settings, "STRIPE_LEGACY_PLAN_ITEMS", False):
        return [{"plan": price_id}]
    return [{"price": price_id}]


def subscribe(*, studio: Studio, plan_key: str, email: str = "") -> StudioBilling:
    """Subscribe the studio to a plan, or change its plan (one subscription per studio). Idempotency keys per
    studio and plan (and subscription, for a change)."""
    plan = plans.get_plan(plan_key)
    if plan is None:
        raise BillingError(_("Choose one of the plans."))
    _require_stripe()
    billing = ensure_customer(studio=studio, email=email)
    s = stripe_client.client()
    metadata = {"studio_id": str(studio.pk), "plan": plan.key}
    try:
        if billing.subscription_id and billing.subscription_status not in ENDED:
            if billing.plan == plan.key:
                return billing
            current = s.Subscription.retrieve(billing.subscription_id)
            item_id = current["items"]["data"][0]["id"]
            item = {"id": item_id, **_subscription_items(plan.price_id)[0]}
            sub = s.Subscription.modify(
                billing.subscription_id,
                items=[item],
                metadata=metadata,
                idempotency_key=stripe_client.idempotency_key("change", studio.pk, billing.subscription_id, plan.key),
            )
        else:
            sub = s.Subscription.create(
                customer=billing.stripe_customer_id,
                items=_subscription_items(plan.price_id),
                metadata=metadata,
                idempotency_key=stripe_client.idempotency_key(
                    "subscribe", studio.pk, billing.subscription_id or "first", plan.key
                ),
            )
    except s.StripeError as exc:
        raise _stripe_error(exc) from None
    with transaction.atomic():
        locked = StudioBilling.objects.select_for_update().get(pk=billing.pk)
        _apply_subscription(locked, sub, at=None)
    log.info("subscribed", plan=plan.key, subscription_id=sub["id"], status=sub["status"])
    return locked


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC) if value else None
    except (TypeError, ValueError):
        return None


def _plan_of(sub: Any) -> str:
    """The plan a subscription bills: from its item's price (the truth), else its metadata."""
    items = _get(_get(sub, "items", {}), "data", []) or []
    for item in items:
        price = _get(item, "price") or _get(item, "plan") or {}
        plan = plans.plan_for_price(str(_get(price, "id", "") or ""))
        if plan is not None:
            return plan.key
    key = str(_get(_get(sub, "metadata", {}), "plan", "") or "")
    return key if plans.get_plan(key) is not None else ""


def _apply_subscription(billing: StudioBilling, sub: Any, *, at: datetime | None) -> str:
    """Write a subscription's state on the (locked) billing row, unless it would move it backwards: an event
    older than the last applied one, an event of another (older) subscription than the current one, or a
    cancelled subscription coming back."""
    sub_id = str(sub["id"])
    status = str(_get(sub, "status", "") or "")
    other = bool(billing.subscription_id) and billing.subscription_id != sub_id
    if other and billing.subscription_status not in ENDED and status in ENDED:
        return "ignored: not the studio's current subscription"
    if at is not None and billing.subscription_event_at is not None and at < billing.subscription_event_at:
        return "ignored: older than the state already applied"
    if billing.subscription_id == sub_id and billing.subscription_status in ENDED and status not in ENDED:
        return "ignored: the subscription has ended"
    items = _get(_get(sub, "items", {}), "data", []) or [{}]
    start = _get(sub, "current_period_start") or _get(items[0], "current_period_start")
    end = _get(sub, "current_period_end") or _get(items[0], "current_period_end")
    billing.subscription_id = sub_id
    billing.subscription_status = status[:30]
    billing.plan = _plan_of(sub) or billing.plan
    billing.current_period_start = _ts(start) or billing.current_period_start
    billing.current_period_end = _ts(end) or billing.current_period_end
    if at is not None:
        billing.subscription_event_at = at
    billing.save()
    return f"subscription {status}"


def create_overage_invoice_item(*, customer_id: str, plan: Any, credits: int, job_id: int, studio_id: int) -> None:
    """Bill overage credits on the next invoice (on commit of the settlement; idempotency key per studio and job,
    so a retry never bills twice). A failure is logged: the OVERAGE entry stays, operators can bill it by hand."""
    s = stripe_client.client()
    try:
        s.InvoiceItem.create(
            customer=customer_id,
            amount=int(plan.overage_unit_price * 100 * credits),
            currency=plan.currency,
            description=f"{credits} GPU credits over the plan (job {job_id})",
            metadata={"studio_id": str(studio_id), "job_id": str(job_id), "credits": str(credits)},
            idempotency_key=stripe_client.idempotency_key("overage", studio_id, job_id),
        )
    except s.StripeError as exc:
        log.error("overage_invoice_item_failed", job_id=job_id, error=str(exc))


def invoices(*, limit: int = 12, billing: StudioBilling | None = None) -> list[dict[str, Any]]:
    """The studio's invoices, from Stripe (none without a customer). Raises BillingError when Stripe fails.
    `billing`: the studio's billing row when the caller has it already (no query then)."""
    billing = billing or get_billing()
    if not billing.stripe_customer_id or not stripe_client.is_configured():
        return []
    s = stripe_client.client()
    try:
        listed = s.Invoice.list(customer=billing.stripe_customer_id, limit=limit)
    except s.StripeError as exc:
        raise _stripe_error(exc) from None
    rows = []
    for inv in listed["data"]:
        rows.append(
            {
                "id": inv["id"],
                "number": _get(inv, "number", "") or inv["id"],
                "status": _get(inv, "status", ""),
                "total": (_get(inv, "total", 0) or 0) / 100,
                "currency": str(_get(inv, "currency", "") or "").upper(),
                "created": _ts(_get(inv, "created") or _get(inv, "date")),
                "url": _get(inv, "hosted_invoice_url", "") or "",
            }
        )
    return rows


def portal_url(*, return_url: str) -> str:
    """A Stripe Billing Portal session (payment method, invoices) for the studio. BillingError when the studio
    has no customer yet or the portal can't be opened (localstripe has none)."""
    billing = get_billing()
    if not billing.stripe_customer_id:
        raise BillingError(_("Choose a plan first: the payment method is set up with it."), 409)
    _require_stripe()
    s = stripe_client.client()
    try:
        session = s.billing_portal.Session.create(customer=billing.stripe_customer_id, return_url=return_url)
    except s.StripeError as exc:
        log.warning("billing_portal_failed", error=str(exc))
        message = _("Stripe's payment method page can't be opened right now; please try again later.")
        raise BillingError(message, 502) from None
    return str(session["url"])


# --- Webhook handlers -----------------------------------------------------------------------------------------


def _studio_of(obj: Any) -> Studio | None:
    return studio_for_customer(str(_get(obj, "customer", "") or "")) or studio_from_metadata(obj)


@handles("invoice.paid", "invoice.payment_succeeded")
def on_invoice_paid(event: Any, record: StripeEvent) -> str:
    """Grant the plan's monthly credits, once per invoice id (both event types may come for one invoice)."""
    invoice = event["data"]["object"]
    studio = _studio_of(invoice)
    if studio is None:
        return "ignored: unknown customer"
    if str(_get(invoice, "status", "paid")) != "paid":
        return "ignored: invoice not paid"
    with for_studio(record, studio):
        billing = StudioBilling.objects.select_for_update().filter().first() or get_billing()
        sub_id = str(_get(invoice, "subscription", "") or "")
        if not sub_id:
            parent = _get(_get(invoice, "parent", {}), "subscription_details", {})
            sub_id = str(_get(parent, "subscription", "") or "")
        if not sub_id:
            return "ignored: not a subscription invoice"
        plan_key = billing.plan if billing.subscription_id in ("", sub_id) else ""
        lines = _get(_get(invoice, "lines", {}), "data", []) or []
        for line in lines:
            price = _get(line, "price") or _get(line, "plan") or {}
            found = plans.plan_for_price(str(_get(price, "id", "") or ""))
            if found is not None:
                plan_key = found.key
                break
        plan = plans.get_plan(plan_key)
        if plan is None:
            return "ignored: no plan for this invoice"
        reference = str(invoice["id"])
        # Under the billing row's lock: a duplicate (the other event type of the same invoice) adds nothing, and its
        # event row must say so rather than repeat the first grant's amount.
        if CreditEntry.objects.filter(kind=CreditEntry.Kind.GRANT, reference=reference).exists():
            return f"invoice {reference} already granted: no credits added"
        entry = credits.grant(amount=plan.monthly_credits, reference=reference)
    return f"granted {entry.amount} credits"


@handles("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
def on_subscription_changed(event: Any, record: StripeEvent) -> str:
    sub = event["data"]["object"]
    studio = _studio_of(sub)
    if studio is None:
        return "ignored: unknown customer"
    with for_studio(record, studio):
        get_billing()
        billing = StudioBilling.objects.select_for_update().get()
        return _apply_subscription(billing, sub, at=event_time(event))


__all__ = [
    "BillingError",
    "ensure_customer",
    "get_billing",
    "invoices",
    "portal_url",
    "subscribe",
]
