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


@register.inclusion_tag("galleries/studio/_group_galleries.html", takes_context=True)
def group_galleries(context: template.Context, group: Any) -> dict[str, Any]:
    """{% group_galleries group %}: the "Galleries" card of a group's page (one link for the whole group; made
    from a group run's page)."""
    from galleries import selectors

    return {"group": group, "galleries": [selectors.with_status(g) for g in selectors.gallery_list(group=group)[:20]]}
