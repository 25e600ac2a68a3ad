"""Scheduled platform tasks of billing (django-q2, default cluster).

`send_due_webhooks()` runs every minute (a Schedule created after migrate, billing/apps.py): the outgoing webhook
deliveries whose retry time has come, across studios, each queued again in its own studio
(billing.webhooks_out.send_due)."""

from __future__ import annotations

from billing import webhooks_out


def send_due_webhooks() -> int:
    return webhooks_out.send_due()
