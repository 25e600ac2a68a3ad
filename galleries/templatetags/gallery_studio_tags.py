"""{% load gallery_studio_tags %}{% client_galleries client %}: the "Galleries" card of the client page (the
client's galleries with their status, and "New gallery"). Needs the studio's tenant context (any page inside a
studio has it)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("galleries/studio/_client_galleries.html", takes_context=True)
def client_galleries(context: template.Context, client: Any) -> dict[str, Any]:
    from galleries import selectors
    from galleries.views import GALLERY_ROLES, _has_role

    request = context.get("request")
    galleries = [selectors.with_status(g) for g in selectors.gallery_list(client=client)[:20]]
    return {
        "client": client,
        "galleries": galleries,
        "can_act": request is not None and _has_role(request, GALLERY_ROLES),
    }
