"""The "add your first client" step of the dashboard's getting-started checklist (tenants/onboarding.py)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from clients.models import Client
from tenants.onboarding import Step, register_step


def first_client_step(request: HttpRequest) -> Step:
    return Step(
        label=_("Add your first client"),
        done=Client.objects.exists(),
        url=reverse("client_create"),
        hint=_("With their consent on record, then their photos: by your upload or their own link."),
    )


def register() -> None:
    """Called from ClientsConfig.ready()."""
    register_step("clients.first_client", first_client_step, order=20)
