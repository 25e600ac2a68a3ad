from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

SWEEP_SCHEDULE_NAME = "generation.sweep_stale_jobs"
SWEEP_FUNC = "generation.tasks.sweep_stale_jobs"


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Jobs and generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        # Every app's `jobs.py` registers its job kinds (generation/jobs.py: the diagnostic countdown).
        autodiscover_modules("jobs")
        post_migrate.connect(ensure_sweep_schedule, sender=self, dispatch_uid="generation.sweep_schedule")
        # Every worker process says it is alive (generation/workers.py), so a queued job never waits silently.
        from django_q.signals import post_spawn

        from generation.workers import start_beacon

        post_spawn.connect(start_beacon, dispatch_uid="generation.worker_beacon")


def ensure_sweep_schedule(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the stale-job sweeper runs every minute (django-q2 Schedule, found by name: idempotent).
    django_q's Schedule table is platform data, not tenant-owned."""
    from django.db import connections
    from django_q.models import Schedule

    connection = connections[using]
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return  # django_q is not migrated (yet) on this database.
    Schedule.objects.using(using).get_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={
            "func": SWEEP_FUNC,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
