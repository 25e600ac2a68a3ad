"""What other apps put on the studio's dashboard, registered from their AppConfig.ready() (an effect upward is a
hook: tenants imports none of them).

A badge provider is a function of the request that returns a `Badge` (or None); the dashboard shows each one
next to the studio's name, e.g. billing's plan ("Starter plan", "No plan yet"), linked to the page it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Badge:
    label: str
    url: str = ""
    tone: str = ""  # "", "warn" or "ok": the badge's colour


BadgeProvider = Callable[[HttpRequest], Badge | None]

_providers: dict[str, BadgeProvider] = {}


def register_badge(name: str, provider: BadgeProvider) -> None:
    """Register (or replace, by name: ready() may run twice) a dashboard badge provider."""
    _providers[name] = provider


def badges(request: HttpRequest) -> list[Badge]:
    out = []
    for provider in _providers.values():
        badge = provider(request)
        if badge is not None:
            out.append(badge)
    return out
