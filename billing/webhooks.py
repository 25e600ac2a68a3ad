"""Stripe's webhooks: `stripe/webhook/` (the platform's own events) and `stripe/connect-webhook/` (events of the
studios' connected accounts), in the platform URLconf.

For each delivery:
1. the signature is verified with the endpoint's signing secret on the raw body (`stripe.Webhook.construct_event`):
   a bad or missing one gets 400 and nothing is stored;
2. in one transaction, the event is stored by its id (StripeEvent, unique) and handed to the handlers registered
   for its type (`@handles("invoice.paid")`). An id already stored is a replay or a duplicate: 200, nothing done;
3. the answer is 200 only after that transaction committed. A handler that raises rolls everything back (the
   event row too) and gets 500, so Stripe retries and the retry is processed.

Handlers run in the platform context; they find their studio (customer id, account id, metadata) and do their
work in its `tenant_context`. They must tolerate events out of order: act on the object's current state, and
never move a state backwards. A handler returns a short outcome (kept on the event row) and may set
`record.studio`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe
import structlog
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from billing import stripe_client
from billing.models import StripeEvent, StudioBilling
from tenants.context import platform_context, tenant_context
from tenants.models import Studio

log = structlog.get_logger("billing.webhooks")

Handler = Callable[[Any, StripeEvent], str | None]
_HANDLERS: dict[str, list[Handler]] = {}
SIGNATURE_TOLERANCE_SECONDS = 300


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register a handler for Stripe event types: `handler(event, record) -> outcome`. `event` is the verified
    `stripe.Event` (its object at `event.data.object`, its connected account at `event.account`), `record` the
    stored StripeEvent. Registration is idempotent (re-importing a module does not register twice)."""

    def register(func: Handler) -> Handler:
        for event_type in event_types:
            registered = _HANDLERS.setdefault(event_type, [])
            key = (func.__module__, func.__qualname__)
            registered[:] = [h for h in registered if (h.__module__, h.__qualname__) != key]
            registered.append(func)
        return func

    return register


def handlers_for(event_type: str) -> list[Handler]:
    _load_handler_modules()
    return list(_HANDLERS.get(event_type, []))


def _load_handler_modules() -> None:
    """The modules whose import registers handlers (the other half's modules may not exist yet)."""
    import importlib

    for name in ("billing.subscriptions", "billing.orders", "billing.connect"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


# --- Finding the studio ---------------------------------------------------------------------------------------


def studio_for_customer(customer_id: str) -> Studio | None:
    """The studio whose Stripe customer this is (platform context), or None."""
    if not customer_id:
        return None
    with platform_context():
        row = StudioBilling.objects.unscoped().filter(stripe_customer_id=customer_id).select_related("studio").first()
    return row.studio if row is not None else None


def studio_for_account(account_id: str) -> Studio | None:
    """The studio whose connected account this is (platform context), or None."""
    if not account_id:
        return None
    with platform_context():
        row = StudioBilling.objects.unscoped().filter(connect_account_id=account_id).select_related("studio").first()
    return row.studio if row is not None else None


def studio_from_metadata(obj: Any) -> Studio | None:
    metadata = _get(obj, "metadata") or {}
    raw = _get(metadata, "studio_id")
    try:
        studio_id = int(raw)
    except (TypeError, ValueError):
        return None
    return Studio.objects.filter(pk=studio_id).first()


@contextmanager
def for_studio(record: StripeEvent, studio: Studio) -> Iterator[Studio]:
    """Run a handler's work in the studio's tenant context, and note the studio on the event row."""
    record.studio = studio
    with tenant_context(studio):
        yield studio


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def event_time(event: Any) -> datetime:
    return datetime.fromtimestamp(int(_get(event, "created", 0) or 0), tz=UTC)


# --- The endpoints --------------------------------------------------------------------------------------------


def _answer(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "message": message}, status=status)


def receive(request: HttpRequest, *, secret: str, endpoint: str) -> HttpResponse:
    if request.method != "POST":
        return _answer(405, "POST only.")
    if not secret:
        log.error("webhook_secret_missing", endpoint=endpoint)
        return _answer(503, "This webhook endpoint is not configured.")
    raw = request.body
    header = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe.Webhook.construct_event(
            raw.decode("utf-8"), header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError:
        log.warning("webhook_bad_signature", endpoint=endpoint)
        return _answer(400, "The signature does not match.")
    except (ValueError, UnicodeDecodeError):
        log.warning("webhook_bad_payload", endpoint=endpoint)
        return _answer(400, "The body is not a Stripe event.")
    event_id = str(_get(event, "id", "") or "")
    event_type = str(_get(event, "type", "") or "")
    if not event_id or not event_type or _get(event, "data") is None:
        return _answer(400, "The body is not a Stripe event.")
    with structlog.contextvars.bound_contextvars(event_id=event_id, event_type=event_type, endpoint=endpoint):
        try:
            outcome = _store_and_handle(event, raw)
        except Exception:
            log.exception("webhook_handler_failed")
            return _answer(500, "The event could not be processed; Stripe will retry.")
    # The transaction has committed: only now does Stripe learn that the event is done.
    return _answer(200, outcome)


def _store_and_handle(event: Any, raw: bytes) -> str:
    import json

    event_id = str(event["id"])
    with platform_context(), transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(
                    event_id=event_id,
                    type=str(event["type"])[:100],
                    account=str(_get(event, "account", "") or "")[:100],
                    created=event_time(event),
                    payload=json.loads(raw),
                )
        except IntegrityError:  # stored already (a replay, or a duplicate delivered concurrently)
            log.info("webhook_duplicate")
            return "duplicate: already processed"
        handlers = handlers_for(record.type)
        outcomes = [h(event, record) or "done" for h in handlers]
        record.outcome = ("; ".join(outcomes) if outcomes else "ignored: no handler for this type")[:200]
        record.processed_at = timezone.now()
        record.save(update_fields=["outcome", "processed_at", "studio"])
    log.info("webhook_processed", outcome=record.outcome)
    return record.outcome


@csrf_exempt
@transaction.non_atomic_requests
def platform_webhook(request: HttpRequest) -> HttpResponse:
    return receive(request, secret=stripe_client.webhook_secret(), endpoint="platform")


@csrf_exempt
@transaction.non_atomic_requests
def connect_webhook(request: HttpRequest) -> HttpResponse:
    return receive(request, secret=stripe_client.connect_webhook_secret(), endpoint="connect")
