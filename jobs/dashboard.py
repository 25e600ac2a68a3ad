"""The studio dashboard's "Recent jobs" panel, registered with tenants.dashboard from JobsConfig.ready()."""

from __future__ import annotations

from django.http import HttpRequest

from jobs.models import Job
from jobs.selectors import recent_jobs
from tenants.dashboard import Panel, register_panel

DASHBOARD_JOBS = 6


def recent_jobs_panel(request: HttpRequest) -> Panel:
    """The studio's latest jobs (one query); while one is queued or running the panel refreshes itself."""
    jobs = recent_jobs(limit=DASHBOARD_JOBS)
    active = any(job.state in (Job.State.QUEUED, Job.State.RUNNING) for job in jobs)
    return Panel(template="jobs/_dashboard_jobs.html", context={"jobs": jobs, "active": active}, order=60)


def register_dashboard_panel() -> None:
    register_panel("jobs.recent", recent_jobs_panel)
