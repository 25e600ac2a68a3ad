"""The dashboard's getting-started checklist for a new studio: make it yours (branding), add a first client,
publish a first template, set up payments. Each app registers its own step from its AppConfig.ready() (tenants
imports none of them); a step is a function of the request that says whether it is done and where to do it.

The checklist shows on the dashboard until every step is done or an owner or manager hides it
(`Studio.onboarding_hidden_at`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from tenants.access import has_role
from tenants.dashboard import Panel, register_panel
from tenants.models import Role

DEFAULT_COLOR = "#1f2937"  # Studio.primary_color's default


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    url: str = ""
    hint: str = ""  # one sentence: why, or what it takes


StepProvider = Callable[[HttpRequest], Step | None]

_steps: dict[str, tuple[int, StepProvider]] = {}


def register_step(name: str, provider: StepProvider, *, order: int) -> None:
    """Register (or replace, by name) a checklist step; steps show in `order`."""
    _steps[name] = (order, provider)


def steps(request: HttpRequest) -> list[Step]:
    out = []
    for _order, provider in sorted(_steps.values(), key=lambda entry: entry[0]):
        step = provider(request)
        if step is not None:
            out.append(step)
    return out


def checklist_panel(request: HttpRequest) -> Panel | None:
    """The checklist, while a step is left and no one hid it."""
    studio = getattr(request, "studio", None)
    if studio is None or studio.onboarding_hidden_at is not None:
        return None
    found = steps(request)
    if not found or all(step.done for step in found):
        return None
    done = sum(step.done for step in found)
    return Panel(
        template="tenants/_onboarding.html",
        context={"steps": found, "steps_done": done, "steps_total": len(found), "welcome": "welcome" in request.GET},
        order=5,  # first: before "Needs you now" (10)
    )


def branding_step(request: HttpRequest) -> Step:
    studio = request.studio  # type: ignore[attr-defined]
    done = bool(studio.logo) or studio.primary_color.lower() != DEFAULT_COLOR or bool(studio.watermark_text)
    owner = has_role(request, [Role.OWNER])
    return Step(
        label=_("Make it yours"),
        done=done,
        url=reverse("branding") if owner else "",
        hint=_("Your logo, colour and watermark on the pages and galleries your clients see.")
        if owner
        else _(
            "Your logo, colour and watermark on the pages and galleries your clients see. The studio's owner sets them."
        ),
    )


def register_checklist() -> None:
    """Called from TenantsConfig.ready(): the panel (first on the dashboard) and tenants' own step."""
    register_panel("tenants.onboarding", checklist_panel)
    register_step("tenants.branding", branding_step, order=10)
