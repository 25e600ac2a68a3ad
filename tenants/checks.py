"""System checks: row-level security is useless if the application's role bypasses it."""

from __future__ import annotations

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import connections
from django.db.utils import DatabaseError


# A deployment check, not a database one: Django runs Tags.database checks only with `check --database`, so the
# documented `check --deploy` would never run it. It connects to the default database itself; a database that
# can't be reached is no reason to fail `check` (e.g. in an image build), so it then reports nothing.
@register(Tags.security, deploy=True)
def check_app_role_is_subject_to_rls(app_configs: Any = None, **kwargs: Any) -> list:
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
    except DatabaseError:
        return []
    if row and row[0]:
        return [
            Warning(
                "The application connects to PostgreSQL as a superuser or BYPASSRLS role, so row-level "
                "security does not apply to it.",
                hint="Create the application role with `manage.py create_app_role` and point DATABASE_URL at "
                "it; keep the owner role in DATABASE_OWNER_URL for migrations.",
                id="tenants.W001",
            )
        ]
    return []
