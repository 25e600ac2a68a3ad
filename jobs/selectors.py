"""Job reads. Always in the current tenant context (the manager fails closed without one)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from jobs.models import Job

#: The list's order, served by the index job_studio_created (studio, -created_at, -id); the id breaks ties.
JOB_LIST_ORDER = ("-created_at", "-id")


def job_list() -> QuerySet[Job]:
    """The studio's jobs, newest first, with what a list shows (one query per page, none per row)."""
    return Job.objects.select_related("created_by").order_by(*JOB_LIST_ORDER)


def recent_jobs(*, limit: int = 5) -> list[Job]:
    return list(job_list()[: max(1, min(limit, 50))])


def get_job(*, job_id: int) -> Job:
    """The studio's job, or Http404 (another studio's id is simply not found)."""
    return get_object_or_404(job_list(), pk=job_id)
