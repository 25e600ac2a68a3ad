from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

RETENTION_SCHEDULE_NAME = "clients.sweep_retention"
RETENTION_FUNC = "clients.tasks.sweep_retention"


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Clients and photo intake"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clients import media
        from clients.dashboard import register_dashboard
        from clients.services import revalidate_after_job
        from clients.uploads import allow_long_part_headers
        from jobs.services import job_finished

        # clients/jobs.py (the validation job kind) is imported by the job system's autodiscovery.
        post_migrate.connect(ensure_retention_schedule, sender=self, dispatch_uid="clients.retention_schedule")
        job_finished.connect(revalidate_after_job, dispatch_uid="clients.revalidate_after_job")
        # "We received your photos" (or which to replace), once a validation job checked the client's uploads.
        from clients.messages import photos_checked

        job_finished.connect(photos_checked, dispatch_uid="clients.messages.photos_checked")
        media.register()  # client photos through signed links, and the self-upload page as their audience
        allow_long_part_headers()  # a 1,000-character file name parses (Django reads 1 KiB of part headers)
        from clients import messages, onboarding  # noqa: F401  (messages: the send job and its erasure step)

        onboarding.register()  # the checklist's "add your first client" step
        register_dashboard()  # photo sets waiting for photos, and the clients' activity (tenants.dashboard)


def ensure_retention_schedule(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the retention sweep runs every hour (django-q2 Schedule, found by name: idempotent)."""
    from django.db import connections
    from django_q.models import Schedule

    connection = connections[using]
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return
    Schedule.objects.using(using).get_or_create(
        name=RETENTION_SCHEDULE_NAME,
        defaults={"func": RETENTION_FUNC, "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
