"""Stripe Connect for the studio: the connected account its clients' payments go to (destination charges), the
onboarding link, and its status (details submitted, charges enabled) kept in `StudioBilling`.

- :func:`ensure_account` creates the Express account once (idempotency key from the studio's id: a retried or
  concurrent call gets the same account).
- :func:`onboarding_link` makes a fresh Account Link (they are single-use and short-lived: never stored).
- :func:`refresh_status` reads the account back (the page does it when the studio returns from onboarding);
  :func:`handle_account_updated` is the `account.updated` Connect webhook doing the same.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from billing import stripe_client
from billing.models import StripeEvent, StudioBilling
from billing.webhooks import handles
from tenants.context import platform_context, tenant_context
from tenants.models import Studio
from tenants.refusals import Refused

log = structlog.get_logger("billing.connect")


class ConnectError(Refused):
    """Stripe Connect onboarding that can't be done; `message` is for people."""


def studio_billing() -> StudioBilling:
    row = StudioBilling.objects.filter().first()
    if row is None:
        with transaction.atomic():
            row, _ = StudioBilling.objects.get_or_create()
    return row


def can_take_payments(row: StudioBilling | None = None) -> bool:
    """Whether the studio's clients can pay now: Stripe is configured and the studio's account takes charges."""
    if not stripe_client.is_configured():
        return False
    row = row or studio_billing()
    return bool(row.connect_account_id and row.charges_enabled)


def ensure_account(*, studio: Studio) -> StudioBilling:
    """The studio's connected account, created at Stripe on first use."""
    row = studio_billing()
    if row.connect_account_id:
        return row
    if not stripe_client.is_configured():
        raise ConnectError(_(stripe_client.SETUP_HINT))
    stripe = stripe_client.client()
    try:
        account = stripe.Account.create(
            type=str(getattr(settings, "STRIPE_CONNECT_ACCOUNT_TYPE", "express")),
            email=studio.contact_email or None,
            business_profile={"name": studio.name},
            capabilities={"card_payments": {"requested": True}, "transfers": {"requested": True}},
            metadata={"studio_id": str(studio.pk)},
            idempotency_key=stripe_client.idempotency_key("connect-account", studio.pk),
        )
    except stripe.StripeError as exc:
        log.warning("connect_account_failed", studio_id=studio.pk, error=str(exc))
        raise ConnectError(_("Stripe could not create the payments account. Try again in a minute.")) from None
    with transaction.atomic():
        row = StudioBilling.objects.select_for_update().get(pk=row.pk)
        if not row.connect_account_id:
            row.connect_account_id = account["id"]
            _apply(row, account)
            row.save()
    log.info("connect_account_created", studio_id=studio.pk, account=row.connect_account_id)
    return row


def onboarding_link(*, studio: Studio, return_url: str, refresh_url: str) -> str:
    """A fresh Account Link to Stripe's onboarding for the studio's account (created first when needed)."""
    if not stripe_client.is_configured():
        raise ConnectError(_(stripe_client.SETUP_HINT))
    row = ensure_account(studio=studio)
    stripe = stripe_client.client()
    try:
        link = stripe.AccountLink.create(
            account=row.connect_account_id, type="account_onboarding", return_url=return_url, refresh_url=refresh_url
        )
    except stripe.StripeError as exc:
        log.warning("connect_link_failed", studio_id=studio.pk, error=str(exc))
        raise ConnectError(_("Stripe could not open the onboarding. Try again in a minute.")) from None
    return str(link["url"])


def _apply(row: StudioBilling, account: Any) -> bool:
    """Copy the account's status onto the row; True when something changed."""
    account = account.to_dict() if hasattr(account, "to_dict") else account
    charges, details = bool(account.get("charges_enabled")), bool(account.get("details_submitted"))
    changed = (row.charges_enabled, row.details_submitted) != (charges, details)
    row.charges_enabled, row.details_submitted = charges, details
    return changed


def refresh_status() -> StudioBilling:
    """Read the account back from Stripe (after the studio returns from onboarding)."""
    row = studio_billing()
    if not row.connect_account_id or not stripe_client.is_configured():
        return row
    stripe = stripe_client.client()
    try:
        account = stripe.Account.retrieve(row.connect_account_id)
    except stripe.StripeError as exc:
        log.warning("connect_refresh_failed", account=row.connect_account_id, error=str(exc))
        return row
    if _apply(row, account):
        row.save(update_fields=["charges_enabled", "details_submitted", "updated_at"])
    return row


def _event_dict(event: Any) -> dict[str, Any]:
    if hasattr(event, "to_dict"):
        return event.to_dict()
    return dict(event)


@handles("account.updated")
def handle_account_updated(event: Any, record: StripeEvent | None = None) -> str:
    """`account.updated` (Connect): the account's current status onto its studio's row. Stripe sends the whole
    account, so the latest event simply wins (an older one arriving late can only repeat a status Stripe had:
    the next refresh corrects it). Unknown accounts change nothing. Returns what it did."""
    data = _event_dict(event)
    account = (data.get("data") or {}).get("object") or {}
    account_id = str(account.get("id") or data.get("account") or "")
    if not account_id:
        return "ignored: no account"
    with platform_context():
        row = StudioBilling.objects.select_related("studio").filter(connect_account_id=account_id).first()
    if row is None:
        return f"ignored: unknown account {account_id}"
    if record is not None:
        record.studio = row.studio
    with tenant_context(row.studio), transaction.atomic():
        row = StudioBilling.objects.select_for_update().get(pk=row.pk)
        if _apply(row, account):
            row.save(update_fields=["charges_enabled", "details_submitted", "updated_at"])
    log.info("connect_account_updated", studio_id=row.studio_id, charges_enabled=row.charges_enabled)
    return f"studio {row.studio_id}: charges_enabled={row.charges_enabled}"
