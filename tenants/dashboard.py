"""What other apps put on the studio's dashboard, registered from their AppConfig.ready() (an effect upward is a
hook: tenants imports none of them).

A badge provider is a function of the request that returns a `Badge` (or None); the dashboard shows each one
next to the studio's name, e.g. billing's plan ("Starter plan", "No plan yet"), linked to the page it names.
A panel provider returns a `Panel` (a template and its context) shown below the shortcuts, e.g. the job
system's recent jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Panel:
    """A section of the dashboard: `template` is rendered with the dashboard's context plus `context`."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


PanelProvider = Callable[[HttpRequest], Panel | None]

_panels: dict[str, PanelProvider] = {}


def register_panel(name: str, provider: PanelProvider) -> None:
    """Register (or replace, by name) a dashboard section, e.g. the job system's recent jobs."""
    _panels[name] = provider


def panels(request: HttpRequest) -> list[Panel]:
    out = []
    for provider in _panels.values():
        panel = provider(request)
        if panel is not None:
            out.append(panel)
    return out
