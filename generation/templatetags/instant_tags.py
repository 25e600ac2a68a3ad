"""{% load instant_tags %}{% instant_portraits photo_set %}: the "Instant portraits" card of the photo set's page
(generation/views/instant.py draws the same card when it answers htmx)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("generation/_instant_portraits.html", takes_context=True)
def instant_portraits(context: template.Context, photo_set: Any) -> dict[str, Any]:
    """Needs the studio's tenant context (any page inside a studio has it)."""
    from generation.views.instant import card_context

    data = card_context(context.get("request"), photo_set)
    data["csrf_token"] = context.get("csrf_token")
    return data
