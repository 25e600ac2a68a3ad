"""The order receipt a client gets when their payment is confirmed (clients/messages.py queues, renders in the
client's language and sends it, once per order)."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Order
from clients.messages import queue_message
from clients.models import ClientMessage
from galleries.services import gallery_link


def money(amount: Decimal, currency: str) -> str:
    return f"{Decimal(amount):.2f} {currency.upper()}"


def queue_receipt(order: Order) -> ClientMessage | None:
    """Inside the transaction that marks the order paid. Nothing for an erased client's (anonymous) order."""
    gallery = order.gallery
    if gallery is None:
        return None
    items = list(order.items.all())
    sizes = {"full": "Full resolution", "web": "Web size"}
    lines = [
        {"label": f"{sizes.get(item.size, item.size)} ×1", "amount": money(item.unit_price, order.currency)}
        for item in items
    ]
    if order.package_id is not None and order.package is not None:
        lines = [{"label": order.package.name, "amount": money(order.amount, order.currency)}]
    return queue_message(
        client=gallery.client,
        kind=ClientMessage.Kind.ORDER_RECEIPT,
        event_key=f"order_receipt:{order.pk}",
        template="billing/messages/order_receipt",
        context={
            "order": order,
            "lines": lines,
            "total": money(order.amount, order.currency),
            "link": gallery_link(gallery=gallery),
        },
    )
