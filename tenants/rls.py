"""PostgreSQL row-level security: the second wall behind the scoped managers.

1. After every `migrate`, every table of a tenant-owned model gets RLS enabled and forced, with one policy:
   a row is visible and writable only when its studio_id equals `current_setting('app.studio_id')`, or in the
   platform context (`app.platform = 'on'`). A missing setting matches nothing: queries fail closed.
2. The settings are made with `set_config(..., is_local => true)` (that is `SET LOCAL`) inside the transaction
   that runs the query, so they hold behind a transaction-pooling PgBouncer and never leak to the next client of
   a pooled connection. An execute wrapper installed on every PostgreSQL connection does it: inside an atomic
   block it sets them once per transaction (again when the savepoint stack or the context changes); in
   autocommit mode it wraps the query in a short transaction of its own.
3. The application connects as a role that is neither superuser nor BYPASSRLS (`manage.py create_app_role`);
   migrations run as the owner role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from tenants.context import db_scope_values

POLICY_NAME = "studio_isolation"
SET_SCOPE_SQL = "SELECT set_config('app.studio_id', %s, true), set_config('app.platform', %s, true)"
_POLICY_EXPR = (
    "(current_setting('app.platform', true) = 'on' "
    "OR studio_id = NULLIF(current_setting('app.studio_id', true), '')::bigint)"
)


def tenant_models() -> list[type[Model]]:
    from django.apps import apps

    from tenants.models import is_tenant_owned

    return [m for m in apps.get_models() if is_tenant_owned(m) and m._meta.managed]


def rls_statements(table: str) -> list[str]:
    """Idempotent statements that enable, force and (re)create the isolation policy on one table."""
    q = f'"{table}"'
    return [
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {q}",
        f"CREATE POLICY {POLICY_NAME} ON {q} USING {_POLICY_EXPR} WITH CHECK {_POLICY_EXPR}",
    ]


def apply_row_level_security(connection: BaseDatabaseWrapper, tables: Iterable[str] | None = None) -> list[str]:
    """Enable and force RLS with the isolation policy on the given tables (default: every tenant-owned one).
    Returns the tables changed. A no-op on databases other than PostgreSQL."""
    if connection.vendor != "postgresql":
        return []
    if tables is None:
        tables = [m._meta.db_table for m in tenant_models()]
    existing = set(connection.introspection.table_names())
    done = []
    with connection.cursor() as cursor:
        for table in tables:
            if table not in existing:
                continue
            for sql in rls_statements(table):
                cursor.execute(sql)
            done.append(table)
    return done


def secure_new_tables(connection: BaseDatabaseWrapper, tables: Iterable[str], *, like: str) -> list[str]:
    """For a migration that adds tenant-owned tables: row-level security with the isolation policy on `tables`,
    and every grant another role holds on the existing table `like`, on them too (the application role's, made
    by `grant_app_role`, where the database has one). A no-op on databases other than PostgreSQL. Returns the
    tables secured."""
    if connection.vendor != "postgresql":
        return []
    tables = list(tables)
    done = apply_row_level_security(connection, tables)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT grantee, privilege_type FROM information_schema.role_table_grants
               WHERE table_schema = current_schema() AND table_name = %s
               AND grantee NOT IN (current_user, 'PUBLIC')""",
            [like],
        )
        for grantee, privilege in cursor.fetchall():
            for table in tables:
                cursor.execute(f"GRANT {privilege} ON {qn(table)} TO {qn(grantee)}")
    return done


def grant_app_role(connection: BaseDatabaseWrapper, role: str) -> None:
    """Give the application role data access (no DDL, no TRUNCATE) to every table and sequence, now and later."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = qn(cursor.fetchone()[0])
        r = qn(role)
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {r}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {r}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {r}")
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}"
        )
        cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}")


def tables_missing_policy(connection: BaseDatabaseWrapper) -> list[str]:
    """Tables with a studio_id column that lack enabled+forced RLS or the isolation policy."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname
            FROM information_schema.columns col
            JOIN pg_class c ON c.relname = col.table_name
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = col.table_schema
            WHERE col.column_name = 'studio_id' AND col.table_schema = current_schema() AND c.relkind = 'r'
              AND NOT (c.relrowsecurity AND c.relforcerowsecurity AND EXISTS (
                  SELECT 1 FROM pg_policies p
                  WHERE p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = %s))
            ORDER BY 1
            """,
            [POLICY_NAME],
        )
        return [row[0] for row in cursor.fetchall()]


# --- Per-transaction SET LOCAL --------------------------------------------------------------------------------

_EMPTY = ("", "")
_TXN_CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN")


class ScopeExecuteWrapper:
    """Installed on every connection of tenants.db (the PostgreSQL backend the settings select): makes the
    database follow the tenant context for every query, with SET LOCAL inside the query's transaction.

    The backend resets `connection.scope_applied` whenever the local settings stop being in force, so inside a
    transaction the settings are made once, and again only when the context changes."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self._busy = False

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        if self._busy or (isinstance(sql, str) and sql.lstrip()[:9].upper().startswith(_TXN_CONTROL)):
            # Our own set_config, and savepoint statements (which may run in an aborted transaction).
            return execute(sql, params, many, context)
        conn = self.connection
        values = db_scope_values()
        if conn.in_atomic_block:
            applied = conn.scope_applied
            if applied != values:
                if not (values == _EMPTY and applied is None):  # nothing set yet means empty already
                    self._set(context, values)
                conn.scope_applied = values
            return execute(sql, params, many, context)
        if values == _EMPTY:
            # No context: nothing to set; tenant tables show no rows (fail closed), others work as usual.
            return execute(sql, params, many, context)
        # Autocommit: give the query a transaction of its own so that SET LOCAL applies to it.
        with transaction.atomic(using=conn.alias):
            self._set(context, values)
            conn.scope_applied = values
            return execute(sql, params, many, context)

    def _set(self, context: dict, values: tuple[str, str]) -> None:
        self._busy = True
        try:
            context["cursor"].execute(SET_SCOPE_SQL, list(values))
        finally:
            self._busy = False
