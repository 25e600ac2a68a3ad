from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from tenants.access import membership_for


def studio(request: HttpRequest) -> dict[str, Any]:
    """The current studio (branding) and the user's membership in it, for every template, and the platform's own
    name (settings.PLATFORM_NAME) for the pages outside a studio."""
    current = getattr(request, "studio", None)
    return {
        "platform_name": settings.PLATFORM_NAME,
        "studio": current,
        "membership": membership_for(request) if current is not None else None,
    }
