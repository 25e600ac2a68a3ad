"""Digital double pages: start training from a ready photo set, a double's page (training progress, metrics,
test render, portraits with likeness and "more like me"), deleting a double.

Thin views: reads and writes through generation.doubles. Owners, managers and staff act; photographers look
(like the client pages). Another studio's double, portrait or photo set is 404 whatever the method (objects are
looked up before the method is checked)."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from clients.models import PhotoSet
from engine.likeness_summary import summarise_likeness
from generation import doubles, runs
from generation.models import DigitalDouble
from jobs.models import Job
from templates_app import base_models
from tenants.access import membership_for, require_http_methods_of, studio_member_required
from tenants.models import Role

# Who may train, render and delete doubles: the same people who manage clients. Photographers look.
DOUBLE_MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
double_manager_required = studio_member_required(roles=DOUBLE_MANAGING_ROLES)

DEFAULT_PROMPT = "studio portrait photo of {subject}, soft light, 85mm"
DEFAULT_NEGATIVE = "blurry, deformed, extra fingers, watermark, text"


def _can_mark_sample(request: HttpRequest) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.can_manage


def can_manage_doubles(request: HttpRequest) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in DOUBLE_MANAGING_ROLES


def model_choices() -> list[tuple[str, str]]:
    """Enabled base models for a select: name → "label · licence · commercial use yes/no"."""
    choices = []
    for spec in base_models.enabled_models():
        use = _("commercial use allowed") if spec.commercial_use else _("no commercial use")
        licence = spec.licence or _("licence not stated")
        choices.append((spec.name, f"{spec.display_name} · {licence} · {use}"))
    return choices


class TrainDoubleForm(forms.Form):
    base_model = forms.ChoiceField(label=gettext_lazy("Base model"))
    class_word = forms.ChoiceField(
        label=gettext_lazy("The client is a"),
        choices=DigitalDouble.ClassWord.choices,
        initial=DigitalDouble.ClassWord.PERSON,
        help_text=gettext_lazy("The word prompts use with the client's trigger token (“photo of ohwx woman”)."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = model_choices()
        with contextlib.suppress(base_models.UnknownBaseModel):
            self.fields["base_model"].initial = base_models.default_model().name


class RenderForm(forms.Form):
    prompt = forms.CharField(
        max_length=doubles.MAX_PROMPT_CHARS,
        initial=DEFAULT_PROMPT,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=gettext_lazy("Prompt"),
        help_text=gettext_lazy("{subject} stands for the client (their trigger phrase)."),
    )
    negative_prompt = forms.CharField(
        max_length=doubles.MAX_PROMPT_CHARS,
        required=False,
        initial=DEFAULT_NEGATIVE,
        label=gettext_lazy("Negative prompt"),
    )
    images = forms.IntegerField(min_value=1, max_value=8, initial=4, label=gettext_lazy("Images (one seed each)"))
    seed = forms.IntegerField(min_value=0, max_value=2**32 - 16, initial=0, label=gettext_lazy("First seed"))
    steps = forms.IntegerField(min_value=1, max_value=doubles.MAX_RENDER_STEPS, initial=30, label=gettext_lazy("Steps"))
    identity_weight = forms.FloatField(min_value=0, max_value=2, initial=1.0, label=gettext_lazy("Identity weight"))
    scheduler = forms.ChoiceField(
        choices=[(s, doubles.SCHEDULER_LABELS[s]) for s in doubles.SCHEDULERS], label=gettext_lazy("Scheduler")
    )
    guidance = forms.FloatField(min_value=0, max_value=30, initial=7.0, label=gettext_lazy("Guidance"))

    def __init__(self, *args: Any, max_images: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["images"] = forms.IntegerField(
            min_value=1, max_value=max_images, initial=min(4, max_images), label=_("Images (one seed each)")
        )
        self.order_fields(["prompt", "negative_prompt", "images"])

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"]
        if doubles.SUBJECT not in prompt:
            raise forms.ValidationError(_("Put {subject} in the prompt where the client should appear."))
        return prompt


def _get_double(digitaldouble_id: int) -> DigitalDouble:
    return get_object_or_404(
        DigitalDouble.objects.select_related("client", "photo_set", "job", "created_by"), pk=digitaldouble_id
    )


def _spec(double: DigitalDouble) -> Any:
    try:
        return base_models.get_model(double.base_model, enabled_only=False)
    except (base_models.UnknownBaseModel, Exception):  # noqa: BLE001 (a broken registry must not break the page)
        return None


def _active_jobs(double: DigitalDouble, render_job: Job | None) -> bool:
    return any(job is not None and not job.is_terminal for job in (double.job, render_job))


def _double_context(request: HttpRequest, double: DigitalDouble, **extra: Any) -> dict[str, Any]:
    from django.conf import settings

    render_job = doubles.latest_render_job(double=double)
    max_images = int(settings.ENGINE_MAX_IMAGES_PER_RENDER)
    portraits = doubles.double_portraits(double=double)
    return {
        "double": double,
        "client": double.client,
        "spec": _spec(double),
        "job": double.job,
        "render_job": render_job,
        "polling": _active_jobs(double, render_job),
        "portraits": portraits,
        # the Likeness panel: figures of the portraits already loaded (no query of its own)
        "likeness": summarise_likeness(p.likeness for p in portraits),
        "picks_likeness": summarise_likeness(p.likeness for p in portraits if p.is_pick),
        "can_manage": can_manage_doubles(request),
        "render_form": extra.pop("render_form", None) or RenderForm(max_images=max_images),
        "scores": sorted(((int(k), v) for k, v in (double.metrics.get("scores") or {}).items()), key=lambda kv: kv[0]),
        "runs": runs.runs_of_double(double=double),
        "can_mark_sample": _can_mark_sample(request),
        **extra,
    }


def _get_photo_set(photoset_id: int) -> PhotoSet:
    return get_object_or_404(PhotoSet.objects.select_related("client"), pk=photoset_id)


@double_manager_required
@require_http_methods_of(_get_photo_set, ["POST"])
def double_train(request: HttpRequest, photoset_id: int) -> HttpResponse:
    """POST: train a digital double from a ready photo set (base model and class word from the form)."""
    photo_set = get_object_or_404(PhotoSet.objects.select_related("client"), pk=photoset_id)
    client_url = reverse("client_detail", kwargs={"client_id": photo_set.client_id}) + "#doubles"
    form = TrainDoubleForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, _("The digital double could not be started: %(errors)s") % {"errors": errors})
        return redirect(client_url)
    try:
        double = doubles.start_training(
            photo_set=photo_set,
            base_model=form.cleaned_data["base_model"],
            class_word=form.cleaned_data["class_word"],
            user=request.user,
        )
    except doubles.DoubleError as exc:
        messages.error(request, exc.message)
        return redirect(client_url)
    messages.success(request, _("Training started. This page shows its progress."))
    return redirect("double_detail", digitaldouble_id=double.pk)


@studio_member_required
@require_http_methods_of(_get_double, ["GET"])
def double_detail(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    double = _get_double(digitaldouble_id)
    return render(request, "generation/double_detail.html", _double_context(request, double))


@studio_member_required
@require_http_methods_of(_get_double, ["GET"])
def double_status(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """The progress fragment the double's page polls (htmx) while its training or render job runs; once
    nothing runs any more it asks htmx to reload the page (metrics and portraits appear)."""
    double = _get_double(digitaldouble_id)
    context = _double_context(request, double)
    response = render(request, "generation/_double_status.html", context)
    if not context["polling"] and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@double_manager_required
@require_http_methods_of(_get_double, ["POST"])
def double_render(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """POST: a test render of the double (prompt with {subject}, steps, images, identity weight, ...)."""
    from django.conf import settings

    double = _get_double(digitaldouble_id)
    form = RenderForm(request.POST, max_images=int(settings.ENGINE_MAX_IMAGES_PER_RENDER))
    status = 400
    if form.is_valid():
        try:
            runs.start_test_render(double=double, config=form.cleaned_data, user=request.user)
        except doubles.DoubleError as exc:
            form.add_error(None, exc.message)
            status = exc.status
        else:
            messages.success(request, _("The render was queued. The portraits appear below when it is done."))
            return redirect(reverse("double_detail", kwargs={"digitaldouble_id": double.pk}) + "#portraits")
    context = _double_context(request, double, render_form=form)
    return render(request, "generation/double_detail.html", context, status=status)


@double_manager_required
@require_http_methods_of(_get_double, ["POST"])
def double_delete(request: HttpRequest, digitaldouble_id: int) -> HttpResponse:
    """POST: delete the double, its portraits and their files."""
    double = _get_double(digitaldouble_id)
    client_id = double.client_id
    counts = doubles.delete_double(double=double)
    count = counts["portraits"]
    messages.success(
        request,
        ngettext(
            "The digital double and its %(count)s portrait(s) were deleted, files included.",
            "The digital double and its %(count)s portrait(s) were deleted, files included.",
            count,
        )
        % {"count": count},
    )
    return redirect(reverse("client_detail", kwargs={"client_id": client_id}) + "#doubles")
