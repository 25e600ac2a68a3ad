"""The "publish your first template" step of the dashboard's getting-started checklist (tenants/onboarding.py)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from templates_app.models import Template
from tenants.onboarding import Step, register_step


def first_template_step(request: HttpRequest) -> Step:
    return Step(
        label=_("Publish your first template"),
        done=Template.objects.filter(status=Template.Status.PUBLISHED).exists(),
        url=reverse("starter_catalog"),
        hint=_("Start from a starter style or design your own; your clients' portraits are rendered from it."),
    )


def register() -> None:
    """Called from TemplatesAppConfig.ready()."""
    register_step("templates_app.first_template", first_template_step, order=30)
