"""Render run pages: the list, a new run for a client's double (with its estimate), a run with its templates'
progress and portraits (htmx), the portrait actions, retrying a failed template, the designer's preview panel,
and marking a double as a sample.

Thin views: reads and writes through generation.runs. Owners, managers and staff run templates and act on
portraits; photographers look, and preview templates on the studio's sample doubles (with owners and managers).
Another studio's run, item, portrait, double or template version is 404 whatever the method (objects are looked
up before the method and the role are checked)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from generation import portraits, runs
from generation.models import DigitalDouble, RenderRun
from templates_app.models import TemplateVersion
from templates_app.samples import samples_for
from tenants.access import membership_for, require_http_methods_of, studio_member_required
from tenants.models import MANAGING_ROLES, Role

# Who runs templates for clients and acts on their portraits (as for doubles), who previews templates.
RUN_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
PREVIEW_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.PHOTOGRAPHER})
PAGE_SIZE = 25


def _has_role(request: HttpRequest, roles: frozenset[str]) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in roles


def refuse_without_role(request: HttpRequest, roles: frozenset[str]) -> None:
    from django.http import Http404

    if not _has_role(request, roles):
        raise Http404("Not found")


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


# --- The list -------------------------------------------------------------------------------------------------


@studio_member_required
def run_list(request: HttpRequest) -> HttpResponse:
    kind = RenderRun.Kind.PREVIEW if request.GET.get("kind") == RenderRun.Kind.PREVIEW else RenderRun.Kind.CLIENT
    page = Paginator(runs.run_list(kind=kind), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"current": "run_list", "page": page, "runs": page.object_list, "kind": kind}
    return render(request, "generation/run_list.html", context)


# --- A new run ------------------------------------------------------------------------------------------------


def _get_double(digitaldouble_id: int) -> DigitalDouble:
    return get_object_or_404(DigitalDouble.objects.select_related("client"), pk=digitaldouble_id)


def _template_rows(double: DigitalDouble, data: Any | None) -> list[dict[str, Any]]:
    """The published templates with the form's values: included, count (default: the version's images per run),
    and why a template can't run with this double (another base model family, ...)."""
    rows = []
    for template in runs.published_templates():
        version = template.current_version
        assert version is not None
        version.template = template
        reason = ""
        try:
            runs.check_version(double=double, version=version)
        except runs.RunError as exc:
            reason = exc.message
        if runs.slots_of(version) > 1:
            reason = _("A group template (%(slots)s people): run it from a group's page.") % {
                "slots": runs.slots_of(version)
            }
        count: Any = version.images_per_run
        included = False
        if data is not None:
            included = bool(data.get(f"include_{template.pk}")) and not reason
            count = (data.get(f"count_{template.pk}") or "").strip() or count
        rows.append({"template": template, "version": version, "count": count, "included": included, "reason": reason})
    return rows


def _selected(rows: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(row["template"], row["count"]) for row in rows if row["included"]]


def _estimate(double: DigitalDouble, rows: list[dict[str, Any]]) -> tuple[runs.Estimate | None, str]:
    chosen = [(row["version"], row["count"]) for row in rows if row["included"]]
    if not chosen:
        return None, ""
    try:
        return runs.estimate(double=double, items=chosen), ""
    except runs.RunError as exc:
        return None, exc.message


def _new_context(double: DigitalDouble, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    estimate, estimate_error = _estimate(double, rows)
    return {
        "current": "run_new",
        "double": double,
        "client": double.client,
        "rows": rows,
        "estimate": estimate,
        "estimate_error": estimate_error,
        "max_images": runs.MAX_IMAGES_PER_TEMPLATE,
        **extra,
    }


def _get_item(renderrun_id: int, renderrunitem_id: int) -> Any:
    return runs.get_item(run=runs.get_run(renderrun_id=renderrun_id), renderrunitem_id=renderrunitem_id)


def _get_version(templateversion_id: int) -> TemplateVersion:
    return get_object_or_404(TemplateVersion.objects.select_related("template"), pk=templateversion_id)


@studio_member_required(roles=RUN_ROLES)
@require_http_methods_of(_get_double, ["GET", "POST"])
def run_new(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """GET: the published templates with a number of images each (and each one's samples). POST
    `action=review`: the same with the estimate; POST `action=start`: start the run and go to its page."""
    double = _get_double(digitaldouble_id)
    if request.method == "GET":
        rows = _template_rows(double, None)
        found = samples_for(request, [row["version"] for row in rows])
        for row in rows:
            row["samples"] = found.get(row["version"].pk, [])
        return render(request, "generation/run_new.html", _new_context(double, rows))
    rows = _template_rows(double, request.POST)
    if request.POST.get("action") != "start":
        return render(request, "generation/run_new.html", _new_context(double, rows, reviewed=True))
    try:
        run = runs.start_run(double=double, items=_selected(rows), user=request.user)
    except runs.RunError as exc:
        context = _new_context(double, rows, error=exc.message)
        return render(request, "generation/run_new.html", context, status=exc.status)
    messages.success(request, _("The run started. Each template's progress and portraits appear below."))
    return redirect("run_detail", renderrun_id=run.pk)


@studio_member_required(roles=RUN_ROLES)
@require_http_methods_of(_get_double, ["POST"])
def run_estimate(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """POST (htmx, on every change of the new-run form): the estimate fragment for the form's templates."""
    double = _get_double(digitaldouble_id)
    context = _new_context(double, _template_rows(double, request.POST))
    return render(request, "generation/_run_estimate.html", context)


# --- A run ----------------------------------------------------------------------------------------------------


def _item_views(request: HttpRequest, run: RenderRun, items: list[Any] | None = None) -> list[runs.ItemView]:
    views = runs.run_items(run=run, items=items)
    for view in views:
        for portrait in view.portraits:
            portrait.can_more = portraits.can_go_more_like_me(portrait)  # type: ignore[attr-defined]
    return views


@studio_member_required
@require_http_methods_of(runs.get_run, ["GET"])
def run_detail(request: HttpRequest, renderrun_id: int) -> HttpResponse:
    run = runs.get_run(renderrun_id=renderrun_id)
    return render(request, "generation/run_detail.html", _run_context(request, run))


def _run_context(request: HttpRequest, run: RenderRun) -> dict[str, Any]:
    return {
        "current": "run_detail",
        "run": run,
        "double": run.double,
        "client": run.double.client,
        "views": _item_views(request, run),
        "can_act": _has_role(request, RUN_ROLES),
        "subjects": list(run.subjects.select_related("double__client").order_by("slot")) if run.group_id else [],
    }


def _item_response(request: HttpRequest, run: RenderRun, item_id: int, **extra: Any) -> HttpResponse:
    item = runs.get_item(run=run, renderrunitem_id=item_id)
    view = _item_views(request, run, [item])[0]
    # The run's status badge rides along as an out-of-band swap (it changes as its templates finish).
    context = {"run": run, "view": view, "can_act": _has_role(request, RUN_ROLES), "oob": True, **extra}
    return render(request, "generation/_run_item.html", context)


@studio_member_required
@require_http_methods_of(_get_item, ["GET"])
def run_item(request: HttpRequest, renderrun_id: int, renderrunitem_id: int) -> HttpResponse:
    """The fragment of one template of a run (progress, error, portraits), polled by htmx while it runs."""
    run = runs.get_run(renderrun_id=renderrun_id)
    runs.get_item(run=run, renderrunitem_id=renderrunitem_id)
    return _item_response(request, run, renderrunitem_id)


@studio_member_required
@require_http_methods_of(_get_item, ["POST"])
def run_item_retry(request: HttpRequest, renderrun_id: int, renderrunitem_id: int) -> HttpResponse:
    """POST: run a failed template of the run again."""
    run = runs.get_run(renderrun_id=renderrun_id)
    item = runs.get_item(run=run, renderrunitem_id=renderrunitem_id)
    refuse_without_role(request, RUN_ROLES)
    item.run = run
    try:
        runs.retry_item(item=item, user=request.user)
    except runs.RunError as exc:
        return respond_after_action(request, run.pk, item.pk, exc.message, error=True, status=exc.status)
    return respond_after_action(request, run.pk, item.pk, _("Queued again."))


def respond_after_action(
    request: HttpRequest, run_id: int, item_id: int | None, notice: str, *, error: bool = False, status: int = 200
) -> HttpResponse:
    """htmx gets the item's fresh fragment with the notice (status 200, so that htmx swaps it in); a plain form
    post goes back to the run page with the notice as a message, or gets the page with the refusal's status."""
    run = runs.get_run(renderrun_id=run_id)  # fresh: the action changed a job or a portrait
    if _is_htmx(request) and item_id is not None:
        return _item_response(request, run, item_id, notice=notice, notice_error=error)
    messages.add_message(request, messages.ERROR if error else messages.SUCCESS, notice)
    if error:
        return render(request, "generation/run_detail.html", _run_context(request, run), status=status)
    anchor = f"#item-{item_id}" if item_id else ""
    return redirect(reverse("run_detail", kwargs={"renderrun_id": run.pk}) + anchor)


# --- The designer's preview -----------------------------------------------------------------------------------


def _preview_context(request: HttpRequest, version: Any, **extra: Any) -> dict[str, Any]:
    previous = runs.previous_version(version=version)
    current = runs.latest_preview(version=version)
    return {
        "version": version,
        "previous_version": previous,
        "current_side": current,
        "previous_side": runs.latest_preview(version=previous),
        "doubles": runs.sample_doubles(),
        "can_preview": _has_role(request, PREVIEW_ROLES),
        "polling": current.active,
        **extra,
    }


@studio_member_required
@require_http_methods_of(_get_version, ["GET", "POST"])
def template_preview(request: HttpRequest, templateversion_id: int) -> HttpResponse:
    """An HTML fragment for the template designer. GET: the sample doubles to preview on, the latest preview of
    this version (its job's progress, its portraits) beside the previous version's. POST `double=<id>`: start a
    preview of this version on that sample double (owners, managers, photographers)."""

    version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=templateversion_id)
    if request.method == "GET":
        return render(request, "generation/_template_preview.html", _preview_context(request, version))
    refuse_without_role(request, PREVIEW_ROLES)
    status, notice, error = 200, _("The preview was queued."), False
    try:
        double_id = int(request.POST.get("double") or 0)
    except (TypeError, ValueError):
        double_id = 0
    double = DigitalDouble.objects.filter(pk=double_id, is_test_subject=True).first()
    try:
        if double is None:
            raise runs.RunError(_("Choose one of the studio's sample doubles to preview on."))
        runs.start_preview(version=version, double=double, user=request.user)
    except runs.RunError as exc:
        status, notice, error = exc.status, exc.message, True
    context = _preview_context(request, version, notice=notice, notice_error=error)
    # htmx swaps only 2xx answers: it gets the refusal inside a 200 fragment; other clients get its status.
    return render(request, "generation/_template_preview.html", context, status=200 if _is_htmx(request) else status)


# --- Sample doubles -------------------------------------------------------------------------------------------


@studio_member_required
@require_http_methods_of(_get_double, ["POST"])
def double_sample(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """POST `sample=1|0` (owners and managers): mark the double as a sample for template previews, or not."""
    double = _get_double(digitaldouble_id)
    refuse_without_role(request, frozenset(MANAGING_ROLES))
    value = request.POST.get("sample") == "1"
    runs.set_test_subject(double=double, is_test_subject=value)
    if value:
        messages.success(request, _("This double is now a sample: template previews can render on it."))
    else:
        messages.success(request, _("This double is no longer a sample for template previews."))
    return redirect("double_detail", digitaldouble_id=double.pk)
