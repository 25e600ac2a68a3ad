"""A group run's page: the published group templates (as many people as the group has) with a number of images
each, the estimate, and starting the run (generation.groups). Staff, managers and owners run; another studio's
group is 404 whatever the method."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from clients.models import ClientGroup
from generation import groups, runs
from generation.views.runs import RUN_ROLES
from tenants.access import require_http_methods_of, studio_member_required


def _get_group(clientgroup_id: int) -> ClientGroup:
    return get_object_or_404(ClientGroup, pk=clientgroup_id)


def _rows(members: list[groups.Member], data: Any | None) -> list[dict[str, Any]]:
    """The published group templates (2 people or more) with the form's values, and why one can't run for this
    group (another number of people, another base model family, ...)."""
    subjects = [m.double for m in members if m.double is not None]
    rows = []
    for template in runs.published_templates():
        version = template.current_version
        assert version is not None
        if runs.slots_of(version) < 2:
            continue
        version.template = template
        reason = ""
        if len(subjects) == len(members) and subjects:
            try:
                groups.estimate_group(subjects=subjects, items=[(version, 1)])
            except runs.RunError as exc:
                reason = exc.message
        elif runs.slots_of(version) != len(members):
            reason = _("Portrays %(slots)s people; this group has %(members)s.") % {
                "slots": runs.slots_of(version),
                "members": len(members),
            }
        count: Any = version.images_per_run
        included = False
        if data is not None:
            included = bool(data.get(f"include_{template.pk}")) and not reason
            count = (data.get(f"count_{template.pk}") or "").strip() or count
        rows.append({"template": template, "version": version, "count": count, "included": included, "reason": reason})
    return rows


def _context(group: ClientGroup, members: list[groups.Member], rows: list[dict[str, Any]], **extra: Any) -> dict:
    estimate, estimate_error = None, ""
    chosen = [(row["version"], row["count"]) for row in rows if row["included"]]
    ready = bool(members) and all(m.ready for m in members)
    if chosen and ready:
        try:
            estimate = groups.estimate_group(subjects=[m.double for m in members if m.double], items=chosen)
        except runs.RunError as exc:
            estimate_error = exc.message
    return {
        "group": group,
        "members": members,
        "ready": ready,
        "rows": rows,
        "estimate": estimate,
        "estimate_error": estimate_error,
        "max_images": runs.MAX_IMAGES_PER_TEMPLATE,
        **extra,
    }


@studio_member_required(roles=RUN_ROLES)
@require_http_methods_of(_get_group, ["GET", "POST"])
def group_run_new(request: HttpRequest, clientgroup_id: int) -> HttpResponse:
    """GET: the group templates with a number of images each. POST `action=review`: with the estimate;
    `action=start`: start the group run and go to its page."""
    group = _get_group(clientgroup_id)
    members = groups.member_doubles(group)
    data = request.POST if request.method == "POST" else None
    rows = _rows(members, data)
    if data is None or data.get("action") != "start":
        return render(request, "generation/group_run_new.html", _context(group, members, rows, reviewed=bool(data)))
    try:
        run = groups.start_group_run(
            group=group, items=[(row["template"], row["count"]) for row in rows if row["included"]], user=request.user
        )
    except runs.RunError as exc:
        context = _context(group, members, rows, error=exc.message)
        return render(request, "generation/group_run_new.html", context, status=exc.status)
    messages.success(request, _("The group run started: each face is rendered with its own person's double."))
    return redirect("run_detail", renderrun_id=run.pk)
