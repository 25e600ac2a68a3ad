from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

SWEEP_SCHEDULE_NAME = "jobs.sweep_stale_jobs"
SWEEP_FUNC = "jobs.tasks.sweep_stale_jobs"
# What the schedule was called while the job system lived in generation/: renamed on the next migrate.
OLD_SWEEP_SCHEDULE_NAME = "generation.sweep_stale_jobs"


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules
        from django_q.signals import post_spawn

        from jobs.dashboard import register_dashboard_panel
        from jobs.metrics import ensure_collector
        from jobs.workers import start_beacon

        # Every app's `jobs.py` declares its job kinds (jobs/jobs.py: the diagnostic countdown).
        autodiscover_modules("jobs")
        post_migrate.connect(ensure_sweep_schedule, sender=self, dispatch_uid="jobs.sweep_schedule")
        # Every worker process says it is alive (jobs/workers.py), so a queued job never waits silently.
        post_spawn.connect(start_beacon, dispatch_uid="jobs.worker_beacon")
        register_dashboard_panel()
        ensure_collector()


def ensure_sweep_schedule(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the stale-job sweeper runs every minute (django-q2 Schedule, found by name: idempotent).
    django_q's Schedule table is platform data, not tenant-owned."""
    from django.db import connections
    from django_q.models import Schedule

    connection = connections[using]
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return  # django_q is not migrated (yet) on this database.
    schedules = Schedule.objects.using(using)
    if not schedules.filter(name=SWEEP_SCHEDULE_NAME).exists():
        schedules.filter(name=OLD_SWEEP_SCHEDULE_NAME).update(name=SWEEP_SCHEDULE_NAME, func=SWEEP_FUNC)
    else:
        schedules.filter(name=OLD_SWEEP_SCHEDULE_NAME).delete()
    schedules.get_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={"func": SWEEP_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
