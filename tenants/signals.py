from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections

from tenants.rls import apply_row_level_security, grant_app_role


def secure_tenant_tables(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: every tenant-owned table gets RLS and its policy; the app role gets data access.

    Runs after each app's migrations, so a new tenant-owned model is covered by the next `migrate` without
    anyone writing a migration for it (tests/tenants/test_rls.py fails if a table with studio_id has none)."""
    if getattr(sender, "name", None) != "tenants":
        return  # post_migrate is sent once per app after the whole migrate has run: act once.
    connection = connections[using]
    if connection.vendor != "postgresql" or not _may_alter_tables(connection):
        return  # e.g. `flush` run by the application role in tests: DDL is the owner's job
    apply_row_level_security(connection)
    role = settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        exists = cursor.fetchone() is not None
    if exists:
        grant_app_role(connection, role)


def _may_alter_tables(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT r.rolsuper OR NOT EXISTS (
                   SELECT 1 FROM pg_tables t WHERE t.schemaname = current_schema()
                   AND NOT pg_has_role(current_user, t.tableowner, 'USAGE'))
               FROM pg_roles r WHERE r.rolname = current_user"""
        )
        row = cursor.fetchone()
    return bool(row and row[0])
