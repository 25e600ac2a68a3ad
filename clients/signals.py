"""Signals of clients, for the apps above it (billing's outgoing webhooks connect in their ready())."""

from __future__ import annotations

from django.dispatch import Signal

#: A client was erased (clients.services.erase_client), sent in its transaction, in the studio, after the
#: deletion receipt was written: `client_ref=` (the erased client's former id), `receipt=` (the DeletionReceipt:
#: ids and counts only). Sender: Client.
client_erased = Signal()
