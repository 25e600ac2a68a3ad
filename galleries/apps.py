from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

REMINDER_SCHEDULE_NAME = "galleries.send_expiry_reminders"
REMINDER_FUNC = "galleries.tasks.send_expiry_reminders"


class GalleriesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "galleries"
    verbose_name = "Client galleries"

    def ready(self) -> None:
        from galleries import checks  # noqa: F401  (registers the deploy check)
        from galleries.access import register_media_audience

        register_media_audience()  # a client's gallery may open its portraits through signed media links
        from galleries import messages
        from jobs.services import job_finished

        # "Your new portrait is ready" once a client's "more like me" succeeds (galleries/messages.py).
        job_finished.connect(messages.on_job_finished, dispatch_uid="galleries.messages.portrait_ready")

        from galleries.dashboard import register_dashboard

        register_dashboard()  # runs to turn into galleries, favorites not bought, galleries never opened

        post_migrate.connect(ensure_reminder_schedule, sender=self, dispatch_uid="galleries.reminder_schedule")


def ensure_reminder_schedule(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: the expiry reminders go out every hour (django-q2 Schedule, found by name: idempotent)."""
    from django.db import connections
    from django_q.models import Schedule

    connection = connections[using]
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return
    Schedule.objects.using(using).get_or_create(
        name=REMINDER_SCHEDULE_NAME,
        defaults={"func": REMINDER_FUNC, "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
