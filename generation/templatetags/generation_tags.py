"""{% load generation_tags %}{% recent_jobs 5 %}: the studio's latest jobs with their progress (dashboard)."""

from __future__ import annotations

from typing import Any

from django import template

from generation.selectors import recent_jobs as select_recent_jobs

register = template.Library()


@register.inclusion_tag("generation/_recent_jobs.html")
def recent_jobs(limit: int = 5) -> dict[str, Any]:
    """Needs the studio's tenant context (any page inside a studio has it)."""
    return {"jobs": select_recent_jobs(limit=int(limit))}
