"""Signals of galleries, for the apps above it (billing's outgoing webhooks connect in their ready()).

Each is sent in the transaction of the act, in the gallery's studio, with the gallery (sender: Gallery)."""

from __future__ import annotations

from django.dispatch import Signal

#: The studio emailed the client their gallery's link (galleries.services.share): `gallery=`, `shared_at=`.
gallery_shared = Signal()
#: The client opened their gallery (a VIEW event, at most once per browser session and day,
#: galleries.client_services.record_view): `gallery=`, `viewed_at=`.
gallery_viewed = Signal()
