"""The order receipt a client gets when their payment is confirmed (clients/messages.py queues, renders in the
client's language and sends it, once per order)."""

from __future__ import annotations

from billing.models import Order
from clients.messages import queue_message
from clients.models import ClientMessage
from galleries.services import gallery_link


def queue_receipt(order: Order) -> ClientMessage | None:
    """Inside the transaction that marks the order paid. Nothing for an erased client's (anonymous) order."""
    gallery = order.gallery
    if gallery is None:
        return None
    items = list(order.items.all())
    # Amounts are formatted by the templates (the `money` filter), in the client's language.
    lines = [{"size": item.size, "amount": item.unit_price} for item in items]
    if order.package_id is not None and order.package is not None:
        lines = [{"package": order.package.name, "amount": order.amount}]
    return queue_message(
        client=gallery.client,
        kind=ClientMessage.Kind.ORDER_RECEIPT,
        event_key=f"order_receipt:{order.pk}",
        template="billing/messages/order_receipt",
        context={
            "order": order,
            "lines": lines,
            "currency": order.currency,
            "link": gallery_link(gallery=gallery),
        },
    )
