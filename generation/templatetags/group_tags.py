"""{% load group_tags %} on a group's page (clients/templates/clients/group_detail.html): `{% group_members group
members %}` (each person with their digital double) and `{% group_runs group %}` (the group's runs, newest
portraits, and "Run group templates"). Needs the studio's tenant context."""

from __future__ import annotations

from typing import Any

from django import template

from generation import groups
from generation.views.runs import RUN_ROLES, _has_role
from tenants.media import signed_media_url

register = template.Library()

PORTRAITS_SHOWN = 12


@register.inclusion_tag("generation/_group_members.html")
def group_members(group: Any, members: Any = None) -> dict[str, Any]:
    return {"group": group, "members": groups.member_doubles(group)}


@register.inclusion_tag("generation/_group_runs.html", takes_context=True)
def group_runs(context: template.Context, group: Any) -> dict[str, Any]:
    request = context.get("request")
    members = groups.member_doubles(group)
    portraits = list(groups.group_portraits(group)[:PORTRAITS_SHOWN])
    for portrait in portraits:
        portrait.thumb_url = signed_media_url(obj=portrait, field="thumbnail", request=request)  # type: ignore[attr-defined]
    return {
        "group": group,
        "ready": len(members) >= 2 and all(m.ready for m in members),
        "can_run": request is not None and _has_role(request, RUN_ROLES),
        "runs": list(groups.group_runs(group)[:10]),
        "portraits": portraits,
    }
