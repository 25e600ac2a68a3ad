"""PostgreSQL row-level security: the second wall, proved with raw SQL that bypasses the ORM's scoping."""

import pytest
from django.db import connection, transaction

from tenants.context import no_tenant_context, tenant_context
from tenants.rls import tables_missing_policy

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _set(studio_id: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.studio_id', %s, true)", [str(studio_id)])


def test_suite_runs_as_a_role_that_cannot_bypass_rls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


def test_every_table_with_a_studio_id_has_the_policy():
    assert tables_missing_policy(connection) == []


def test_raw_sql_cannot_read_or_write_another_studios_rows(two_tenants):
    a, b = two_tenants
    with no_tenant_context(), transaction.atomic(), connection.cursor() as cursor:
        _set(a.studio.pk)
        cursor.execute("SELECT studio_id FROM tenants_membership")
        assert {row[0] for row in cursor.fetchall()} == {a.studio.pk}
        cursor.execute("SELECT count(*) FROM tenants_membership WHERE studio_id = %s", [b.studio.pk])
        assert cursor.fetchone()[0] == 0
        cursor.execute("UPDATE tenants_membership SET role = 'staff' WHERE studio_id = %s", [b.studio.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM tenants_membership WHERE studio_id = %s", [b.studio.pk])
        assert cursor.rowcount == 0
        with pytest.raises(Exception, match="row-level security"), transaction.atomic():
            _set(a.studio.pk)
            cursor.execute(
                "INSERT INTO tenants_membership (studio_id, user_id, role, created_at) VALUES (%s, %s, 'owner', now())",
                [b.studio.pk, a.owner.pk],
            )
        # Moving one's own row into the other studio is refused too.
        with pytest.raises(Exception, match="row-level security"), transaction.atomic():
            _set(a.studio.pk)
            cursor.execute("UPDATE tenants_membership SET studio_id = %s", [b.studio.pk])
    with tenant_context(b.studio):
        from tenants.models import Membership

        assert Membership.objects.get().role == "owner"


def test_no_setting_means_no_rows(two_tenants):
    with no_tenant_context(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_membership")
        assert cursor.fetchone()[0] == 0


def test_orm_queries_carry_set_local_even_in_autocommit(two_tenants):
    """The ORM's own queries get SET LOCAL from the tenant context, also outside any transaction."""
    a, b = two_tenants
    from tenants.models import Membership

    with tenant_context(a.studio):
        # unscoped() drops the ORM filter; the database still shows only studio A's row.
        assert list(Membership.objects.unscoped().values_list("studio_id", flat=True)) == [a.studio.pk]


# --- Every tenant-owned table, generically ---------------------------------------------------------------------


def _tables_with_rows(two_tenants):
    """One row of every tenant-owned model in each studio (tests/factories.py), by table."""
    from tenants.rls import tenant_models
    from tests.factories import build_all

    a, b = two_tenants
    rows_a, rows_b = build_all(a), build_all(b)
    return [(m._meta.db_table, m._meta.pk.column, rows_a[m].pk, rows_b[m].pk) for m in tenant_models()]


def test_every_tenant_table_is_covered_by_these_tests():
    """Every table with a studio_id column belongs to a tenant-owned model (so the loop below sees it)."""
    from tenants.rls import tenant_models

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'studio_id' "
            "AND table_schema = current_schema()"
        )
        with_column = {row[0] for row in cursor.fetchall()}
    assert with_column == {m._meta.db_table for m in tenant_models()}


def test_raw_sql_isolation_on_every_tenant_table(two_tenants):
    """For each tenant-owned table, as studio A: B's rows can't be read, updated or deleted, and no row can be
    inserted into B or moved to B. Raw SQL, so the ORM's scoping plays no part."""
    a, b = two_tenants
    tables = _tables_with_rows(two_tenants)
    assert {t for t, *_ in tables} >= {"tenants_membership", "tenants_invitation", "tenants_apikey"}
    problems = []
    for table, pk, a_pk, b_pk in tables:
        q = connection.ops.quote_name
        with no_tenant_context(), transaction.atomic(), connection.cursor() as cursor:
            _set(a.studio.pk)
            cursor.execute(f"SELECT DISTINCT studio_id FROM {q(table)}")
            if {row[0] for row in cursor.fetchall()} != {a.studio.pk}:
                problems.append(f"{table}: A sees rows other than its own")
            cursor.execute(f"SELECT count(*) FROM {q(table)} WHERE {q(pk)} = %s", [b_pk])
            if cursor.fetchone()[0] != 0:
                problems.append(f"{table}: A reads B's row by id")
            cursor.execute(f"UPDATE {q(table)} SET studio_id = studio_id WHERE {q(pk)} = %s", [b_pk])
            if cursor.rowcount != 0:
                problems.append(f"{table}: A updates B's row")
            cursor.execute(f"DELETE FROM {q(table)} WHERE studio_id = %s", [b.studio.pk])
            if cursor.rowcount != 0:
                problems.append(f"{table}: A deletes B's rows")
            # Insert a copy of A's own row, labelled as B's: refused by the policy's WITH CHECK.
            cursor.execute(f"SELECT * FROM {q(table)} WHERE {q(pk)} = %s", [a_pk])
            columns = [c.name for c in cursor.description]
            values = dict(zip(columns, cursor.fetchone(), strict=True))
            values.pop(pk)
            values["studio_id"] = b.studio.pk
            names = ", ".join(q(c) for c in values)
            marks = ", ".join(["%s"] * len(values))
            try:
                with transaction.atomic():
                    _set(a.studio.pk)
                    cursor.execute(
                        f"INSERT INTO {q(table)} ({names}) VALUES ({marks})",
                        [_adapt(v) for v in values.values()],
                    )
                problems.append(f"{table}: A inserts a row into B")
            except Exception as exc:  # noqa: BLE001
                if "row-level security" not in str(exc):
                    problems.append(f"{table}: insert into B failed, but not because of the policy: {exc}")
            try:
                with transaction.atomic():
                    _set(a.studio.pk)
                    cursor.execute(f"UPDATE {q(table)} SET studio_id = %s WHERE {q(pk)} = %s", [b.studio.pk, a_pk])
                problems.append(f"{table}: A moves its row into B")
            except Exception as exc:  # noqa: BLE001
                if "row-level security" not in str(exc):
                    problems.append(f"{table}: moving a row to B failed, but not because of the policy: {exc}")
        with no_tenant_context(), transaction.atomic(), connection.cursor() as cursor:
            # The test's outer transaction still holds the raw SET LOCAL above: clear it, as a new one would be.
            _set("")
            cursor.execute(f"SELECT count(*) FROM {q(table)}")
            if cursor.fetchone()[0] != 0:
                problems.append(f"{table}: rows visible with no studio set")
    # B's rows are all still there.
    with tenant_context(b.studio), connection.cursor() as cursor:
        for table, pk, _a_pk, b_pk in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)} WHERE {pk} = %s", [b_pk])
            if cursor.fetchone()[0] != 1:
                problems.append(f"{table}: B's row is gone")
    assert not problems, "\n".join(problems)


def _adapt(value: object) -> object:
    """Values read back from psycopg, ready to be sent again (JSON columns come back as Python objects)."""
    from psycopg.types.json import Jsonb

    return Jsonb(value) if isinstance(value, dict | list) else value
