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
    downloads = [item for item in items if not item.product_name]
    lines: list[dict] = [{"size": item.size, "amount": item.unit_price} for item in downloads]
    if order.package_id is not None and order.package is not None and downloads:
        lines = [{"package": order.package.name, "amount": sum(item.unit_price for item in downloads)}]
    lines += [
        {"print": item.product_name, "quantity": item.quantity, "amount": item.unit_price * item.quantity}
        for item in items
        if item.product_name
    ]
    if order.discount:
        lines.append({"coupon": order.coupon.code if order.coupon_id else "", "amount": -order.discount})
    if order.shipping_amount:
        lines.append({"shipping": True, "amount": order.shipping_amount})
    return queue_message(
        client=gallery.client,
        kind=ClientMessage.Kind.ORDER_RECEIPT,
        event_key=f"order_receipt:{order.pk}",
        template="billing/messages/order_receipt",
        context={
            "order": order,
            "lines": lines,
            "downloads": bool(downloads),
            "currency": order.currency,
            "link": gallery_link(gallery=gallery),
        },
    )
