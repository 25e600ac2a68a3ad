"""Create (or update) the PostgreSQL role the application connects as: LOGIN, NOSUPERUSER, NOBYPASSRLS,
data access to every table and sequence, nothing else. Run it as the owner role."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tenants.rls import grant_app_role


class Command(BaseCommand):
    help = "Create the non-superuser, non-BYPASSRLS PostgreSQL role the application connects as."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", default=settings.DATABASE_APP_ROLE)
        parser.add_argument("--password", default=None, help="Password for the role (omit for trust/peer auth)")

    def handle(self, *args: Any, role: str, password: str | None, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Row-level security needs PostgreSQL; DATABASE_URL is not PostgreSQL.")
        ensure_app_role(role, password)
        self.stdout.write(self.style.SUCCESS(f"Role {role!r}: LOGIN NOSUPERUSER NOBYPASSRLS, data access granted."))


def ensure_app_role(role: str, password: str | None = None) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        cursor.execute(f"{verb} ROLE {qn(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
        if password:
            cursor.execute(f"ALTER ROLE {qn(role)} PASSWORD %s", [password])
    grant_app_role(connection, role)
