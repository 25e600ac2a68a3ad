"""The studio's group pages (couples, families) at /clients/groups/: list, create, detail (edit, delete).

What a group is rendered with (its members' doubles, group templates, runs, portraits) is shown on the detail page
by generation's `{% group_portraits group %}` tag, and its galleries by galleries' tags: this app imports neither.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clients import groups
from clients.forms import GroupForm
from clients.models import ClientGroup
from clients.services import IntakeError
from clients.views import _can_manage, client_manager_required
from tenants.access import require_http_methods_of, studio_member_required


def _get_group(clientgroup_id: int) -> ClientGroup:
    return get_object_or_404(ClientGroup, pk=clientgroup_id)


@studio_member_required
@require_http_methods(["GET"])
def group_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "clients/group_list.html",
        {"groups": list(groups.group_list()), "can_manage": _can_manage(request)},
    )


@client_manager_required
@require_http_methods(["GET", "POST"])
def group_create(request: HttpRequest) -> HttpResponse:
    candidates = groups.group_candidates()
    first = request.GET.get("client")
    initial = list(candidates.filter(pk=first)) if first and first.isdigit() else []
    form = GroupForm(request.POST or None, candidates=candidates, initial_members=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                group = groups.create_group(
                    name=form.cleaned_data["name"],
                    notes=form.cleaned_data["notes"],
                    clients=form.members(),
                    created_by=request.user,
                )
            except IntakeError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The group “%(name)s” was created.") % {"name": group.name})
                return redirect("group_detail", clientgroup_id=group.pk)
    return render(
        request,
        "clients/group_form.html",
        {"form": form, "group": None, "has_candidates": candidates.exists()},
        status=status,
    )


@studio_member_required
@require_http_methods_of(_get_group, ["GET", "POST"])
def group_detail(request: HttpRequest, clientgroup_id: int) -> HttpResponse:
    group = _get_group(clientgroup_id)
    can_manage = _can_manage(request)
    members = groups.members_of(group)
    candidates = groups.group_candidates() | groups.members_queryset(group)
    form = GroupForm(
        request.POST if request.method == "POST" else None,
        candidates=candidates.distinct(),
        initial_members=members,
        initial={"name": group.name, "notes": group.notes},
    )
    status = 200
    if request.method == "POST":
        if not can_manage:
            return HttpResponse("Only owners, managers and staff change groups.", status=403)
        status = 400
        if form.is_valid():
            try:
                groups.update_group(
                    group=group,
                    name=form.cleaned_data["name"],
                    notes=form.cleaned_data["notes"],
                    clients=form.members(),
                )
            except IntakeError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The group was saved."))
                return redirect("group_detail", clientgroup_id=group.pk)
    context = {"group": group, "members": members, "form": form, "can_manage": can_manage}
    return render(request, "clients/group_detail.html", context, status=status)


@client_manager_required
@require_http_methods_of(_get_group, ["POST"])
def group_delete(request: HttpRequest, clientgroup_id: int) -> HttpResponse:
    group = _get_group(clientgroup_id)
    name = group.name
    groups.delete_group(group=group)
    messages.success(
        request, _("The group “%(name)s” was deleted. Its people and their portraits are kept.") % {"name": name}
    )
    return redirect("group_list")
