"""The actions on a portrait, from the run page (htmx fragments or plain forms) and the double's page: "more like
me", re-roll, hide, unhide, pick, unpick (generation.portraits). Another studio's portrait is 404 whatever the
method; a test render's portrait brings the studio back to its double's page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from generation import portraits
from generation.models import Portrait, RenderRun
from generation.runs import RunError
from generation.views.runs import RUN_ROLES, refuse_without_role, respond_after_action
from tenants.access import require_http_methods_of, studio_member_required


def _get_portrait(portrait_id: int) -> Portrait:
    return get_object_or_404(Portrait.objects.select_related("double", "item", "run"), pk=portrait_id)


def _portrait_action(request: HttpRequest, portrait_id: int, action: str) -> HttpResponse:
    portrait = _get_portrait(portrait_id)
    refuse_without_role(request, RUN_ROLES)
    notices = {
        "more": _("Rendering it again, more like the client."),
        "reroll": _("Rendering it again with a new seed."),
        "hide": _("Hidden."),
        "unhide": _("Shown again."),
        "pick": _("Marked as a pick."),
        "unpick": _("No longer a pick."),
    }
    try:
        if action == "more":
            portraits.more_like_me(portrait=portrait, user=request.user)
        elif action == "reroll":
            portraits.reroll(portrait=portrait, user=request.user)
        elif action == "hide":
            portraits.hide(portrait=portrait)
        elif action == "unhide":
            portraits.unhide(portrait=portrait)
        else:
            portraits.set_pick(portrait=portrait, pick=action == "pick")
        notice, error, status = notices[action], False, 200
    except RunError as exc:
        notice, error, status = exc.message, True, exc.status
    if portrait.run_id is None or portrait.run.kind == RenderRun.Kind.TEST:  # a test render of the double's page
        messages.add_message(request, messages.ERROR if error else messages.SUCCESS, notice)
        return redirect(reverse("double_detail", kwargs={"digitaldouble_id": portrait.double_id}) + "#portraits")
    return respond_after_action(request, portrait.run_id, portrait.item_id, notice, error=error, status=status)


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_more_like_me(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "more")


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_reroll(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "reroll")


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_hide(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "hide")


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_unhide(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "unhide")


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_pick(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "pick")


@studio_member_required
@require_http_methods_of(_get_portrait, ["POST"])
def portrait_unpick(request: HttpRequest, portrait_id: int) -> HttpResponse:
    return _portrait_action(request, portrait_id, "unpick")
