"""Outgoing webhooks (issue 20, docs/webhooks.md): a studio's other tools are told, by a signed HTTP POST, of the
events they chose (billing.models.WebhookEvent).

- An event makes one `WebhookDelivery` per active endpoint that chose it, in the transaction of the event itself
  (`emit`); the POST is sent after the commit by a job of the default cluster (`billing.webhook_delivery`,
  billing/jobs.py), never in the request.
- The body is the payload as compact JSON; the header `Studio-Signature: t=<unix ts>,v1=<hex>[,v1=<hex>]` carries
  HMAC-SHA256(secret, "<ts>.<body>") for the endpoint's secret, and for its previous one for 24 h after a roll.
- 2xx within 10 s is delivered; anything else (another status, a timeout, a refused address) is tried again
  after `BACKOFF` (1 min … 24 h: about two days in all), then the delivery fails. A redirect is not followed.
- In order per object: a delivery waits while an earlier one of the same object to the same endpoint is not
  finished; finishing one sends the next at once.
- Replay: a new delivery of the same event (same id and body), from the log.
- SSRF: an endpoint's host must resolve to public addresses only, checked when it is saved and again at each
  send, which then connects to the address it checked (no second lookup). settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES
  lifts that (and the https rule of production) for development and tests.

Payloads carry ids, statuses, times, counts and links to the studio's API objects: never a photo, an image URL,
a name or an email (the privacy promise).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from django.conf import settings
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from jobs.services import enqueue_job
from tenants.context import current_studio, platform_context, tenant_context
from tenants.emails import studio_base_url
from tenants.models import Studio, User
from tenants.refusals import Refused

log = structlog.get_logger("billing.webhooks_out")

DELIVERY_KIND = "billing.webhook_delivery"
SIGNATURE_HEADER = "Studio-Signature"
TIMEOUT_SECONDS = 10.0
PREVIOUS_SECRET_HOURS = 24
#: The wait before each retry: attempt n+1 waits BACKOFF[n-1] after attempt n fails; after the last, it fails.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
#: A delivery waiting for an earlier one of its object looks again after this (finishing that one wakes it first).
WAIT_FOR_EARLIER = timedelta(minutes=5)
#: A delivery handed to a job that never ran (a lost task) is made due again after this.
STALE_QUEUED = timedelta(hours=1)
MAX_ENDPOINTS = 20
RESPONSE_BODY_CHARS = 500
EVENT_TYPES = tuple(WebhookEvent.values)


class WebhookError(Refused):
    """A refused webhook action (a bad URL, an address that isn't public, an unknown event): 400 by default."""

    code = "webhook_refused"

    def __init__(self, message: str, status: int | None = None, *, field: str | None = None) -> None:
        super().__init__(message, status=status)
        if field is not None:
            self.fields = {field: [message]}


# --- Signing --------------------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" with the secret (its UTF-8 bytes)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, and the previous one until it expires."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        found.append(endpoint.previous_secret)
    return found


def signature_header(*, secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}"] + [f"v1={sign(secret=s, timestamp=timestamp, body=body)}" for s in secrets_])


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


# --- Addresses (SSRF) -----------------------------------------------------------------------------------------


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", False))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    )


def check_url(url: str) -> tuple[str, int]:
    """The URL's host and port, or WebhookError: http(s) only (https in production), a host, and (unless
    WEBHOOKS_ALLOW_PRIVATE_ADDRESSES) every address it resolves to public."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise WebhookError("A webhook URL starts with https:// (or http://).", field="url")
    if parts.scheme != "https" and settings.PRODUCTION and not allow_private():
        raise WebhookError("A webhook URL must use https.", field="url")
    if not parts.hostname:
        raise WebhookError("A webhook URL needs a host name.", field="url")
    if parts.username or parts.password:
        raise WebhookError("A webhook URL can't carry a user name or password.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError("This webhook URL's port is not a number.", field="url") from None
    return parts.hostname, port


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses of the host, or WebhookError when it has none or (unless the setting allows it) any of them
    is private, loopback, link-local, reserved, multicast or unspecified."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookError(f"The host {host} can't be found.", field="url") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookError(f"The host {host} can't be found.", field="url")
    if not allow_private():
        for address in addresses:
            if not is_public_address(address):
                message = f"The host {host} resolves to a private or reserved address ({address}): refused."
                raise WebhookError(message, field="url")
    return addresses


def check_endpoint_url(url: str) -> None:
    host, port = check_url(url)
    resolve_public(host, port)


# --- Endpoints (writes) ---------------------------------------------------------------------------------------


def _clean_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(str(e) for e in events))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        message = f"Unknown event(s): {', '.join(unknown)}."
        raise WebhookError(message, field="events")
    if not chosen:
        raise WebhookError("Choose at least one event.", field="events")
    return [e for e in EVENT_TYPES if e in chosen]


def create_endpoint(
    *, url: str, events: Iterable[str], description: str = "", is_active: bool = True, created_by: User | None
) -> WebhookEndpoint:
    """A new endpoint of the current studio, with a new secret. WebhookError for a bad URL or event list."""
    url = url.strip()
    check_endpoint_url(url)
    chosen = _clean_events(events)
    with transaction.atomic():
        if WebhookEndpoint.objects.count() >= MAX_ENDPOINTS:
            raise WebhookError(f"A studio has at most {MAX_ENDPOINTS} webhook endpoints.", status=409)
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            events=chosen,
            description=description.strip()[:200],
            is_active=is_active,
            secret=new_secret(),
            created_by=created_by if created_by is not None and created_by.is_authenticated else None,
        )
    log.info("webhook_endpoint_created", endpoint_id=endpoint.pk)
    return endpoint


def update_endpoint(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    if url is not None and url.strip() != endpoint.url:
        url = url.strip()
        check_endpoint_url(url)
        endpoint.url = url
    if events is not None:
        endpoint.events = _clean_events(events)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if is_active is not None:
        endpoint.is_active = bool(is_active)
    endpoint.save()
    return endpoint


def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint and its log."""
    endpoint.delete()


def roll_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> WebhookEndpoint:
    """A new secret; the one it replaces keeps signing (as a second v1) for PREVIOUS_SECRET_HOURS hours."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = now + timedelta(hours=PREVIOUS_SECRET_HOURS)
        locked.secret = new_secret()
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    log.info("webhook_secret_rolled", endpoint_id=endpoint.pk)
    return locked


# --- Events ---------------------------------------------------------------------------------------------------


def api_link(name: str, **kwargs: Any) -> str | None:
    """The absolute URL of one of the studio's API objects (the current studio), or None."""
    studio = current_studio()
    if studio is None:
        return None
    try:
        route = reverse(name, urlconf=settings.STUDIO_URLCONF, kwargs=kwargs)
    except NoReverseMatch:
        return None
    return studio_base_url(studio).rstrip("/") + route


def _endpoints_for(event_type: str) -> list[WebhookEndpoint]:
    if current_studio() is None:
        return []
    return [e for e in WebhookEndpoint.objects.filter(is_active=True) if event_type in (e.events or [])]


def wanted(event_type: str) -> bool:
    """Whether an active endpoint of the current studio chose this event (one query): the event's sources ask
    before they gather what it says."""
    return bool(_endpoints_for(event_type))


def emit(
    *,
    event_type: str,
    object_ref: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    at: datetime | None = None,
) -> list[int]:
    """Record the event for every active endpoint of the current studio that chose it, in the caller's
    transaction; each delivery is sent by a job after the commit. `data` (or the function that makes it, called
    only when some endpoint wants the event) is the payload's `data.object`. Returns the deliveries' ids."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event {event_type!r}")
    studio = current_studio()
    endpoints = _endpoints_for(event_type)
    if studio is None or not endpoints:
        return []
    if callable(data):
        data = data()
    at = at or timezone.now()
    event_id = uuid.uuid4()
    payload = {
        "id": str(event_id),
        "type": event_type,
        "created": at.isoformat().replace("+00:00", "Z"),
        "studio": studio.slug,
        "data": {"object": data},
    }
    ids: list[int] = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                object_ref=object_ref[:60],
                payload=payload,
                status=WebhookDelivery.Status.QUEUED,
                next_attempt_at=at,
            )
            _enqueue(delivery)
            ids.append(delivery.pk)
    log.info("webhook_event", event_type=event_type, event_id=str(event_id), deliveries=len(ids))
    return ids


def _enqueue(delivery: WebhookDelivery) -> None:
    """A job sends the delivery once the current transaction commits (the delivery is QUEUED by the caller)."""
    enqueue_job(kind=DELIVERY_KIND, payload={"delivery_id": delivery.pk})


def replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the event of a logged delivery again: a new delivery with the same event id and body, to the same
    endpoint (after any unfinished earlier one of its object). 409 when the endpoint is disabled."""
    endpoint = WebhookEndpoint.objects.get(pk=delivery.endpoint_id)
    if not endpoint.is_active:
        raise WebhookError("This endpoint is disabled: enable it to replay its events.", status=409)
    with transaction.atomic():
        copy = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            object_ref=delivery.object_ref,
            payload=delivery.payload,
            status=WebhookDelivery.Status.QUEUED,
            next_attempt_at=timezone.now(),
            replay_of_id=delivery.replay_of_id or delivery.pk,
        )
        _enqueue(copy)
    log.info("webhook_replay", delivery_id=delivery.pk, replay_id=copy.pk)
    return copy


# --- Sending --------------------------------------------------------------------------------------------------


def _earlier_unfinished(delivery: WebhookDelivery) -> bool:
    return (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            object_ref=delivery.object_ref,
            id__lt=delivery.pk,
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.QUEUED],
        )
        .exclude(pk=delivery.pk)
        .exists()
    )


def _wake_next(delivery: WebhookDelivery) -> None:
    """The delivery finished: the next one of its object to its endpoint, waiting, is sent now."""
    following = (
        WebhookDelivery.objects.select_for_update()
        .filter(
            endpoint_id=delivery.endpoint_id,
            object_ref=delivery.object_ref,
            id__gt=delivery.pk,
            status=WebhookDelivery.Status.PENDING,
        )
        .order_by("id")
        .first()
    )
    if following is not None:
        following.status = WebhookDelivery.Status.QUEUED
        following.next_attempt_at = timezone.now()
        following.save(update_fields=["status", "next_attempt_at", "updated_at"])
        _enqueue(following)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST to the URL, connecting to an address checked here (not looked up again by the client): the answer's
    status and the start of its body (read no further, whatever the endpoint sends)."""
    host, port = check_url(url)
    address = resolve_public(host, port)[0]
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    with (
        httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client,
        client.stream("POST", pinned, content=body, headers=headers, extensions=extensions) as response,
    ):
        start = b""
        for chunk in response.iter_raw():
            start += chunk
            if len(start) >= RESPONSE_BODY_CHARS * 4:
                break
        return response.status_code, start.decode("utf-8", "replace")[:RESPONSE_BODY_CHARS]


def attempt(*, delivery_id: int) -> dict[str, Any]:
    """One attempt at a QUEUED delivery (the job's work): waits behind an earlier delivery of its object, else
    POSTs and records the answer, schedules the next try or finishes (and wakes the next of its object)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != WebhookDelivery.Status.QUEUED:
            return {"skipped": "not queued"}
        now = timezone.now()
        if _earlier_unfinished(delivery):
            delivery.status = WebhookDelivery.Status.PENDING
            delivery.next_attempt_at = now + WAIT_FOR_EARLIER
            delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
            return {"waiting": "an earlier event of the same object"}
        endpoint = WebhookEndpoint.objects.get(pk=delivery.endpoint_id)
        if not endpoint.is_active:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.error = "The endpoint is disabled."
            delivery.next_attempt_at = None
            delivery.save(update_fields=["status", "error", "next_attempt_at", "updated_at"])
            _wake_next(delivery)
            return {"status": delivery.status}
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.save(update_fields=["attempts", "last_attempt_at", "updated_at"])

    body = body_of(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "StudioWebhooks/1.0",
        SIGNATURE_HEADER: signature_header(secrets_=signing_secrets(endpoint), timestamp=timestamp, body=body),
        "Studio-Event-Id": str(delivery.event_id),
        "Studio-Event-Type": delivery.event_type,
        "Studio-Delivery-Id": str(delivery.pk),
    }
    code: int | None = None
    text, error = "", ""
    started = time.monotonic()
    try:
        code, text = _post(endpoint.url, body, headers)
    except WebhookError as exc:
        error = exc.message
    except httpx.TimeoutException:
        error = f"No answer within {TIMEOUT_SECONDS:g} seconds."
    except httpx.HTTPError as exc:
        error = f"Connection failed: {type(exc).__name__}"
    duration = int((time.monotonic() - started) * 1000)

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        now = timezone.now()
        delivery.response_code, delivery.response_body = code, text
        delivery.error, delivery.duration_ms = error[:300], duration
        if code is not None and 200 <= code < 300:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at, delivery.next_attempt_at = now, None
        elif delivery.attempts < MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.PENDING
            delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
        else:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        delivery.save()
        if delivery.status != WebhookDelivery.Status.PENDING:
            _wake_next(delivery)
    log.info(
        "webhook_attempt",
        delivery_id=delivery.pk,
        status=delivery.status,
        code=code,
        attempt=delivery.attempts,
        ms=duration,
    )
    return {
        "status": delivery.status,
        "response_code": code,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
    }


def send_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The scheduled sweep (every minute, billing.tasks.send_due_webhooks): every studio's PENDING deliveries
    whose time has come, and QUEUED ones whose job was lost, are queued again, each in its studio. Returns how
    many."""
    now = now or timezone.now()
    with platform_context():
        due = list(
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("pk", "studio_id")[:limit]
        )
        lost = list(
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.QUEUED, updated_at__lte=now - STALE_QUEUED)
            .order_by("id")
            .values_list("pk", "studio_id")[:limit]
        )
    sent = 0
    for pk, studio_id in due + lost:
        studio = Studio.objects.filter(pk=studio_id).first()
        if studio is None:
            continue
        with tenant_context(studio), transaction.atomic():
            delivery = WebhookDelivery.objects.select_for_update().filter(pk=pk).first()
            if delivery is None or delivery.status == WebhookDelivery.Status.DELIVERED:
                continue
            if delivery.status == WebhookDelivery.Status.FAILED:
                continue
            delivery.status = WebhookDelivery.Status.QUEUED
            delivery.save(update_fields=["status", "updated_at"])
            _enqueue(delivery)
            sent += 1
    return sent
