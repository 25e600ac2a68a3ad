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
