"""Scheduled platform tasks of galleries (django-q2, default cluster).

`send_expiry_reminders()` runs every hour (a Schedule created after migrate, galleries/apps.py): each gallery
about to close gets one reminder email (galleries.services.send_expiry_reminders: found across studios, each
sent in its own studio's tenant context and transaction), and a gallery closing in two days with favourites not
bought one message about them (galleries.messages.send_favourites_reminders)."""

from __future__ import annotations

from galleries import messages, services


def send_expiry_reminders() -> dict[str, int]:
    """The closing reminders, then the messages about favourites not bought (galleries/messages.py)."""
    result = services.send_expiry_reminders()
    result["favourites_reminded"] = messages.send_favourites_reminders()["queued"]
    return result
