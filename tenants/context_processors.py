from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tenants.access import membership_for


def studio(request: HttpRequest) -> dict[str, Any]:
    """The current studio (branding) and the user's membership in it, for every template."""
    current = getattr(request, "studio", None)
    return {
        "studio": current,
        "membership": membership_for(request) if current is not None else None,
    }
