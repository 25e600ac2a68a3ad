"""Instant portraits on the photo set's page (generation/instant.py): start a job (POST), and the card's fragment
the page polls (htmx) while it runs. The card itself is drawn by `{% instant_portraits photo_set %}`
(generation/templatetags/instant_tags.py). Owners, managers and staff start them (like training a double);
every member sees them. Another studio's set is a 404 whatever the method."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import PhotoSet
from generation import instant
from generation.views.doubles import can_manage_doubles, double_manager_required
from tenants.access import require_http_methods_of, studio_member_required
from tenants.refusals import refusal_page


class InstantForm(forms.Form):
    images = forms.IntegerField(
        min_value=instant.MIN_IMAGES,
        max_value=instant.MAX_IMAGES,
        initial=instant.DEFAULT_IMAGES,
        label=gettext_lazy("Portraits"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["images"].help_text = _("%(min)s to %(max)s, one seed each.") % {
            "min": instant.MIN_IMAGES,
            "max": instant.MAX_IMAGES,
        }


def _get_photo_set(photoset_id: int) -> PhotoSet:
    return get_object_or_404(PhotoSet.objects.select_related("client"), pk=photoset_id)


def card_context(request: HttpRequest | None, photo_set: PhotoSet, **extra: Any) -> dict[str, Any]:
    """What the "Instant portraits" card shows: why they can't be made (or the form and its estimate), the
    latest job's progress, and the set's instant portraits."""
    reason = instant.unavailable_reason(photo_set)
    job = instant.latest_job(photo_set=photo_set)
    estimate = None
    if not reason:
        try:
            estimate = instant.estimate(images=instant.DEFAULT_IMAGES)
        except instant.InstantError:
            estimate = None
    return {
        "request": request,
        "photo_set": photo_set,
        "client": photo_set.client,
        "reason": reason,
        "job": job,
        "polling": job is not None and not job.is_terminal,
        "portraits": list(instant.set_portraits(photo_set=photo_set)),
        "can_manage": request is not None and can_manage_doubles(request),
        "form": extra.pop("form", None) or InstantForm(),
        "estimate": estimate,
        **extra,
    }


@double_manager_required
@require_http_methods_of(_get_photo_set, ["POST"])
def instant_start(request: HttpRequest, photoset_id: int) -> HttpResponse:
    """POST `images`: queue instant portraits of the set, then back to the set's page (its card shows the
    progress). A refusal answers its status with the message and a way back."""
    photo_set = _get_photo_set(photoset_id)
    page = reverse("photoset_detail", kwargs={"client_id": photo_set.client_id, "photoset_id": photo_set.pk})
    form = InstantForm(request.POST)
    try:
        if not form.is_valid():
            raise instant.InstantError(
                "; ".join(e for errs in form.errors.values() for e in errs) or _("Say how many portraits to make.")
            )
        instant.start_instant(photo_set=photo_set, images=form.cleaned_data["images"], user=request.user)
    except instant.InstantError as exc:
        context = {"photo_set": photo_set, "client": photo_set.client, "back": page + "#instant"}
        return refusal_page(request, exc, template="generation/instant_refused.html", context=context)
    messages.success(request, _("Instant portraits started: their card below shows the progress."))
    return redirect(page + "#instant")


@studio_member_required
@require_http_methods_of(_get_photo_set, ["GET"])
def instant_status(request: HttpRequest, photoset_id: int) -> HttpResponse:
    """The card's fragment, polled every second while its job runs (the portraits appear when it ends)."""
    photo_set = _get_photo_set(photoset_id)
    return render(request, "generation/_instant_portraits.html", card_context(request, photo_set))
