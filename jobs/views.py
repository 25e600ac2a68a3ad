"""Job pages: the list, a job with its live progress (htmx polling), cancel, retry, and the diagnostic job.

Thin views: reads through jobs.selectors, writes through jobs.services. Every page is for the
studio's members only; a job of another studio is 404, whatever the method."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jobs import keyset, selectors, services
from jobs.jobs import DEMO_KIND, DEMO_MAX_STEPS
from jobs.models import Job
from tenants.access import manager_required, membership_for, require_http_methods_of, studio_member_required

PAGE_SIZE = 25


class DemoJobForm(forms.Form):
    steps = forms.IntegerField(
        label=gettext_lazy("Steps"),
        min_value=1,
        max_value=DEMO_MAX_STEPS,
        initial=10,
        error_messages={
            "min_value": gettext_lazy("Count at least 1 step."),
            "max_value": format_lazy(gettext_lazy("Count at most {max} steps."), max=DEMO_MAX_STEPS),
            "invalid": gettext_lazy("Enter a whole number of steps."),
            "required": gettext_lazy("Enter a number of steps."),
        },
    )


def _can_manage(request: HttpRequest) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.can_manage


def _list_context(request: HttpRequest, form: DemoJobForm | None = None) -> dict:
    # Keyset pages (jobs.keyset): "Newer" / "Older" links by cursor, no count, the same cost at any depth.
    page = keyset.page_for_request(
        selectors.job_list(), ordering=selectors.JOB_LIST_ORDER, cursor=request.GET.get("cursor"), page_size=PAGE_SIZE
    )
    return {
        "page": page,
        "jobs": page.items,
        "can_manage": _can_manage(request),
        "demo_form": form or DemoJobForm(),
    }


@studio_member_required
def job_list(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/job_list.html", _list_context(request))


@manager_required
@require_POST
def start_demo(request: HttpRequest) -> HttpResponse:
    """POST: start the diagnostic countdown job (managers only)."""
    form = DemoJobForm(request.POST)
    if not form.is_valid():
        return render(request, "jobs/job_list.html", _list_context(request, form), status=400)
    job = services.enqueue_job(
        kind=DEMO_KIND, payload={"steps": form.cleaned_data["steps"], "delay": 0.5}, user=request.user
    )
    messages.success(request, _("The test job was queued."))
    return redirect("job_detail", job_id=job.pk)


@studio_member_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.get_job(job_id=job_id)
    return render(request, "jobs/job_detail.html", {"job": job})


@studio_member_required
def job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress partial the detail page polls every second (it stops once the job is finished)."""
    job = selectors.get_job(job_id=job_id)
    # The details (attempts, start and finish times) ride along as an out-of-band swap, unless the polling page
    # has none (details=0: the progress block on another page, e.g. a double's after a Cancel or Retry).
    details = request.GET.get("details") != "0"
    return render(request, "jobs/_progress_poll.html", {"job": job, "details": details})


@studio_member_required
@require_http_methods_of(selectors.get_job, ["POST"])
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.get_job(job_id=job_id)  # 404 first: another studio's id never learns more
    try:
        services.cancel_job(job=job)
    except services.JobStateError as exc:
        return _after_action(request, job, str(exc), level=messages.ERROR)
    if job.state == Job.State.CANCELLED:
        return _after_action(request, job, _("The job was cancelled."))
    return _after_action(request, job, _("Cancelling: the job stops at its next step."))


@studio_member_required
@require_http_methods_of(selectors.get_job, ["POST"])
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.get_job(job_id=job_id)
    try:
        services.retry_job(job=job, user=request.user)
    except services.JobStateError as exc:
        return _after_action(request, job, str(exc), level=messages.ERROR)
    return _after_action(request, job, _("The job was queued again."))


def _after_action(request: HttpRequest, job: Job, notice: str, *, level: int = messages.SUCCESS) -> HttpResponse:
    """htmx gets the fresh progress partial with the notice in it (status 200, so that htmx swaps it in); a
    plain form post goes back to the job page with the notice as a message, or gets it with a 409 when the
    action did not fit the job's state."""
    if request.headers.get("HX-Request"):
        context = {
            "job": job,
            "poll": True,
            "actions": True,
            "details": request.POST.get("details") != "0",  # see jobs/_progress.html
            "notice": notice,
            "notice_error": level >= 40,
        }
        return render(request, "jobs/_progress.html", context)
    if level >= messages.ERROR:
        messages.add_message(request, level, notice)
        return render(request, "jobs/job_detail.html", {"job": job}, status=409)
    messages.add_message(request, level, notice)
    return redirect("job_detail", job_id=job.pk)
