"""How a paid print order reaches the client: a pluggable fulfilment step, and the order's way through it.

A **fulfiller** makes and ships the prints. The studio itself is the first one (:class:`StudioFulfilment`): the order
and its print-ready files wait on the studio's Orders page, and its staff move it on by hand (in production,
shipped with a tracking number, delivered). A lab's API is another fulfiller, added by registering a class with
the same three methods (:class:`Fulfiller`): ``place`` sends the files and the address and returns the lab's own
reference, ``cancel`` says whether the lab could still stop it, and the lab's status callbacks call
:func:`advance` (``manual = False`` keeps the staff's buttons off). The studio's fulfiller is
``settings.PRINT_FULFILMENT_PROVIDER`` ("studio" unless set).

The way through (each step told to the client by email and, for shipping, to the studio's webhooks)::

    placed ─► in production ─► shipped (carrier, tracking) ─► delivered
      │              │
      └──────────────┴─► cancelled (the refund of a print order not yet shipped)
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import webhook_events
from billing.models import Order, PrintFulfilment
from clients.messages import queue_message
from clients.models import ClientMessage
from galleries.services import gallery_link
from tenants.refusals import Refused

log = structlog.get_logger("billing.fulfilment")

Status = PrintFulfilment.Status

#: Where an order may go from each status.
NEXT: dict[str, tuple[str, ...]] = {
    Status.PLACED: (Status.IN_PRODUCTION, Status.SHIPPED, Status.CANCELLED),
    Status.IN_PRODUCTION: (Status.SHIPPED, Status.CANCELLED),
    Status.SHIPPED: (Status.DELIVERED,),
    Status.DELIVERED: (),
    Status.CANCELLED: (),
}
STAMPS = {
    Status.PLACED: "placed_at",
    Status.IN_PRODUCTION: "in_production_at",
    Status.SHIPPED: "shipped_at",
    Status.DELIVERED: "delivered_at",
    Status.CANCELLED: "cancelled_at",
}


class FulfilmentRefused(Refused):
    """A step the order can't take: `message` says why (409), or what is missing (400)."""


class Fulfiller(Protocol):
    """A way of making and shipping prints (see the module's docstring)."""

    key: ClassVar[str]
    name: ClassVar[str]
    manual: ClassVar[bool]

    def place(self, fulfilment: PrintFulfilment) -> str: ...

    def cancel(self, fulfilment: PrintFulfilment) -> bool: ...


class StudioFulfilment:
    """The studio makes and ships its prints itself: the order waits on its Orders page with the files."""

    key: ClassVar[str] = "studio"
    name: ClassVar[str] = "The studio"
    manual: ClassVar[bool] = True

    def place(self, fulfilment: PrintFulfilment) -> str:
        return ""  # nothing to send anywhere: the Orders page shows the order and its files

    def cancel(self, fulfilment: PrintFulfilment) -> bool:
        return fulfilment.status in (Status.PLACED, Status.IN_PRODUCTION)


_FULFILLERS: dict[str, Fulfiller] = {}


def register(fulfiller: Fulfiller) -> Fulfiller:
    """Make a fulfiller available by its key (a lab's integration registers itself in its app's ready())."""
    _FULFILLERS[fulfiller.key] = fulfiller
    return fulfiller


register(StudioFulfilment())


def provider_key() -> str:
    """The fulfiller of new print orders: settings.PRINT_FULFILMENT_PROVIDER, "studio" by default."""
    key = str(getattr(settings, "PRINT_FULFILMENT_PROVIDER", "") or StudioFulfilment.key)
    return key if key in _FULFILLERS else StudioFulfilment.key


def fulfiller(key: str) -> Fulfiller:
    return _FULFILLERS.get(key) or _FULFILLERS[StudioFulfilment.key]


# --- The order's way -------------------------------------------------------------------------------------------


def _address(details: dict[str, Any]) -> dict[str, str]:
    address = details.get("address") or {}
    keys = ("line1", "line2", "postal_code", "city", "state", "country")
    return {key: str(address.get(key) or "")[:200] for key in keys}


def shipping_details(session: dict[str, Any]) -> dict[str, Any]:
    """The shipping details of a completed Checkout Session: `collected_information.shipping_details` (Stripe's
    API from 2025), else `shipping_details` (before)."""
    collected = session.get("collected_information") or {}
    return collected.get("shipping_details") or session.get("shipping_details") or {}


def open_fulfilment(*, order: Order, session: dict[str, Any]) -> PrintFulfilment:
    """In the transaction that marks a print order paid: its fulfilment, placed with the studio's fulfiller, with
    the address Checkout collected; the client is told. Once per order."""
    existing = PrintFulfilment.objects.filter(order=order).first()
    if existing is not None:
        return existing
    details = shipping_details(session)
    customer = session.get("customer_details") or {}
    fulfilment = PrintFulfilment.objects.create(
        order=order,
        provider=provider_key(),
        status=Status.PLACED,
        ship_name=str(details.get("name") or customer.get("name") or "")[:200],
        ship_address=_address(details),
        ship_phone=str(customer.get("phone") or "")[:40],
        placed_at=timezone.now(),
    )
    _tell_client(fulfilment)
    return fulfilment


def place_with_provider(*, fulfilment: PrintFulfilment) -> PrintFulfilment:
    """Once the print files are ready: hand the order to its fulfiller (the studio: nothing to send)."""
    reference = fulfiller(fulfilment.provider).place(fulfilment)
    fulfilment.files_ready_at = fulfilment.files_ready_at or timezone.now()
    fulfilment.provider_ref = reference or fulfilment.provider_ref
    fulfilment.save(update_fields=["files_ready_at", "provider_ref", "updated_at"])
    return fulfilment


def _clean_tracking(carrier: str, number: str, url: str) -> tuple[str, str, str]:
    carrier, number, url = (carrier or "").strip(), (number or "").strip(), (url or "").strip()
    if not number:
        raise FulfilmentRefused(_("Give the tracking number the carrier gave you."), 400)
    if len(number) > 100 or len(carrier) > 60:
        raise FulfilmentRefused(_("The carrier (up to 60 characters) or tracking number (up to 100) is too long."))
    if url:
        try:
            URLValidator(schemes=["https", "http"])(url)
        except ValidationError:
            raise FulfilmentRefused(_("The tracking link must be a web address (https://…)."), 400) from None
        if len(url) > 500:
            raise FulfilmentRefused(_("The tracking link is too long (up to 500 characters)."), 400)
    return carrier, number, url


def advance(
    *,
    fulfilment: PrintFulfilment,
    status: str,
    carrier: str = "",
    tracking_number: str = "",
    tracking_url: str = "",
) -> PrintFulfilment:
    """Move a print order to its next step (in production, shipped with its tracking, delivered, cancelled),
    under its row's lock; the client gets a message, and shipping is told to the studio's webhooks. A step the
    order can't take (back, or twice) is refused with 409 and changes nothing."""
    if status not in STAMPS:
        raise FulfilmentRefused(_("Unknown step: choose in production, shipped, delivered or cancelled."), 400)
    tracking = _clean_tracking(carrier, tracking_number, tracking_url) if status == Status.SHIPPED else None
    with transaction.atomic():
        fulfilment = PrintFulfilment.objects.select_for_update().select_related("order").get(pk=fulfilment.pk)
        if status not in NEXT[fulfilment.status]:
            raise FulfilmentRefused(
                _("This order is %(now)s: it can't be marked %(status)s.")
                % {"now": fulfilment.get_status_display().lower(), "status": Status(status).label.lower()},
                409,
            )
        fulfilment.status = status
        setattr(fulfilment, STAMPS[status], timezone.now())
        if tracking is not None:
            fulfilment.carrier, fulfilment.tracking_number, fulfilment.tracking_url = tracking
        fulfilment.save()
        _tell_client(fulfilment)
        if status == Status.SHIPPED:
            webhook_events.order_shipped(fulfilment)
    log.info("print_order_advanced", order_id=fulfilment.order_id, status=status)
    return fulfilment


def cancel_for_refund(*, order: Order) -> bool:
    """In the transaction that marks an order refunded: a print order not yet shipped is cancelled (and its
    fulfiller asked to stop); one already shipped stays as it is (the studio settles it with the client)."""
    fulfilment = PrintFulfilment.objects.select_for_update().filter(order=order).first()
    if fulfilment is None or Status.CANCELLED not in NEXT[fulfilment.status]:
        return False
    fulfiller(fulfilment.provider).cancel(fulfilment)
    fulfilment.status, fulfilment.cancelled_at = Status.CANCELLED, timezone.now()
    fulfilment.save(update_fields=["status", "cancelled_at", "updated_at"])
    _tell_client(fulfilment)
    return True


def _tell_client(fulfilment: PrintFulfilment) -> ClientMessage | None:
    order = fulfilment.order
    gallery = order.gallery
    if gallery is None:  # an erased client's order: nobody to tell
        return None
    items = [item for item in order.items.all() if item.product_id is not None or item.product_name]
    return queue_message(
        client=gallery.client,
        kind=ClientMessage.Kind.PRINT_UPDATE,
        event_key=f"print:{order.pk}:{fulfilment.status}",
        template="billing/messages/print_update",
        context={
            "order": order,
            "fulfilment": fulfilment,
            "status": fulfilment.status,
            "items": items,
            "link": gallery_link(gallery=gallery),
        },
    )
