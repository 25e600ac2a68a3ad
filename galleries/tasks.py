"""Scheduled platform tasks of galleries (django-q2, default cluster).

`send_expiry_reminders()` runs every hour (a Schedule created after migrate, galleries/apps.py): each gallery
about to close gets one reminder email (galleries.services.send_expiry_reminders: found across studios, each
sent in its own studio's tenant context and transaction)."""

from __future__ import annotations

from galleries import services


def send_expiry_reminders() -> dict[str, int]:
    return services.send_expiry_reminders()
