"""What other apps put on the studio's dashboard, registered from their AppConfig.ready() (an effect upward is a
hook: tenants imports none of them). Four hooks, each a function of the request:

- a badge provider returns a `Badge` (or None), shown next to the studio's name, e.g. billing's plan ("Starter
  plan", "No plan yet"), linked to the page it names;
- a panel provider returns a `Panel` (a template and its context), a section of the page placed by its `order`,
  e.g. billing's "This month" (20) and the job system's recent jobs (60);
- an action-items provider returns the `ActionItem`s of its app ("Needs you now": photo sets waiting, doubles that
  failed, galleries never opened, ...): a count, a sentence, a link where staff act and the oldest objects named;
  the dashboard shows those with a count, most urgent first;
- an activity provider returns its app's latest `Activity` (client added, gallery opened, order paid, ...), at
  most `limit`, read with a bounded number of queries; the dashboard merges them, newest first.

Each provider reads with a fixed number of queries whatever the studio's size (tests/tenants/test_dashboard.py
asserts the page's count at 1 and at 1,000 clients); `count_and_oldest` is the one-query read of an item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet, Window
from django.http import HttpRequest
from django.utils.timesince import timesince
from django.utils.translation import gettext as _


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
    """A section of the dashboard: `template` is rendered with the dashboard's context plus `context` (as
    `panel`). Sections are placed by `order`: the dashboard's own are "Needs you now" (10), "Recent activity" (30)
    and the shortcuts (40)."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


PanelProvider = Callable[[HttpRequest], Panel | None]

_panels: dict[str, PanelProvider] = {}


def register_panel(name: str, provider: PanelProvider) -> None:
    """Register (or replace, by name) a dashboard section, e.g. the job system's recent jobs."""
    _panels[name] = provider


def panels(request: HttpRequest) -> list[Panel]:
    """The registered panels that have something to show, in their `order` (ties: as registered)."""
    out = []
    for provider in _panels.values():
        panel = provider(request)
        if panel is not None:
            out.append(panel)
    return sorted(out, key=lambda panel: panel.order)


# --- Needs you now ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedObject:
    """One of an item's objects, named: "Anna Martin", its page, and a detail ("waiting for 12 days")."""

    label: str
    url: str = ""
    detail: str = ""


@dataclass(frozen=True)
class ActionItem:
    """Something that needs the studio now. `text` is a short sentence with the count in it ("3 photo sets are
    waiting for the client's photos"); `url` the page where staff act (the object itself when there is one, else a
    list filtered to them, or the oldest where no list filters them) and `action` the link's words; `objects` the
    oldest few, named; `urgency` orders the items (lower first: money and failures before reminders); `note` says
    who may act when the viewer's role may not; `of` how many objects there are to name when they are not what
    `count` counts (favorites counted, galleries named)."""

    key: str
    count: int
    text: str
    url: str
    action: str
    urgency: int = 50
    objects: tuple[NamedObject, ...] = ()
    note: str = ""
    of: int = 0

    @property
    def more(self) -> int:
        """How many objects the named ones leave out."""
        return max(0, (self.of or self.count) - len(self.objects))


def oldest_first(
    *,
    key: str,
    count: int,
    text: str,
    objects: tuple[NamedObject, ...],
    action_for_one: str,
    urgency: int,
    note: str = "",
    of: int = 0,
    fallback_url: str = "",
) -> ActionItem:
    """An item whose link opens the oldest object it names (no list filters them): `action_for_one` when there
    is one object to act on (`of`, else `count`), _("Start with the oldest") when there are more."""
    return ActionItem(
        key=key,
        count=count,
        text=text,
        url=objects[0].url if objects else fallback_url,
        action=action_for_one if (of or count) == 1 else _("Start with the oldest"),
        urgency=urgency,
        objects=objects,
        note=note,
        of=of,
    )


ActionItemsProvider = Callable[[HttpRequest], Iterable[ActionItem]]

_action_items: dict[str, ActionItemsProvider] = {}


def register_action_items(name: str, provider: ActionItemsProvider) -> None:
    """Register (or replace, by name) an app's provider of "Needs you now" items."""
    _action_items[name] = provider


def action_items(request: HttpRequest) -> list[ActionItem]:
    """Every provider's items that have a count, most urgent first (ties: by key)."""
    out = [item for provider in _action_items.values() for item in provider(request) if item.count > 0]
    return sorted(out, key=lambda item: (item.urgency, item.key))


def count_and_oldest(queryset: QuerySet[Any], *, order_by: Iterable[str], limit: int = 3) -> tuple[int, list[Any]]:
    """How many rows `queryset` has and its first `limit` in `order_by`, in one query: the count is a window
    (COUNT(*) OVER ()) computed before the LIMIT, so it is the whole set's. (0, []) when it is empty."""
    rows = list(queryset.annotate(dashboard_total=Window(expression=Count("pk"))).order_by(*order_by)[:limit])
    return (rows[0].dashboard_total if rows else 0), rows


def counted(count: int, singular: str, plural: str = "") -> str:
    """ "1 photo set", "3 photo sets" (or the given plural)."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def age(moment: datetime, now: datetime | None = None) -> str:
    """How long ago, in its largest unit: "1 week" (for 12 days), "3 hours", "0 minutes"."""
    return timesince(moment, now, depth=1)


# --- Recent activity ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """Something that happened: when, in words ("Anna Martin opened the gallery "Summer""), the page it names,
    and what it is about in a word (the badge it shows: "Client", "Photos", "Gallery", "Order", ...)."""

    at: datetime
    text: str
    url: str = ""
    label: str = ""


ActivityProvider = Callable[[HttpRequest, int], Iterable[Activity]]

_activity: dict[str, ActivityProvider] = {}

ACTIVITY_SHOWN = 10


def register_activity(name: str, provider: ActivityProvider) -> None:
    """Register (or replace, by name) an app's provider of recent activity: `provider(request, limit)` returns at
    most `limit` of its latest events, read with a fixed number of queries (each LIMIT `limit`)."""
    _activity[name] = provider


def recent_activity(request: HttpRequest, *, limit: int = ACTIVITY_SHOWN) -> list[Activity]:
    """The latest `limit` events of every provider, merged, newest first."""
    events = [event for provider in _activity.values() for event in provider(request, limit)]
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:limit]
