"""{% load jobs_tags %}{% recent_jobs 5 %}: the studio's latest jobs with their progress (dashboard)."""

from __future__ import annotations

from typing import Any

from django import template

from jobs.selectors import recent_jobs as select_recent_jobs

register = template.Library()


@register.inclusion_tag("jobs/_recent_jobs.html")
def recent_jobs(limit: int = 5) -> dict[str, Any]:
    """Needs the studio's tenant context (any page inside a studio has it)."""
    return {"jobs": select_recent_jobs(limit=int(limit))}


@register.simple_tag
def job_worker_status(job: Any) -> Any:
    """{% job_worker_status job as worker %}: for a queued job whose cluster has no live worker (or whose gpu
    worker can't import the engine), that cluster's WorkerStatus (jobs/workers.py); else None."""
    if job is None or getattr(job, "state", None) != "queued":
        return None
    from jobs.workers import worker_status

    status = worker_status(job.cluster)
    if status.alive and status.engine:
        return None
    return status
