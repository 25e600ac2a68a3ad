"""The database follows the tenant context: SET LOCAL once per transaction, re-made exactly when needed."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tenants.context import no_tenant_context, platform_context, tenant_context
from tenants.models import Membership

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _db_studio() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.studio_id', true)")
        return cursor.fetchone()[0] or ""


def test_one_set_config_per_transaction_not_per_query(two_tenants):
    a, _ = two_tenants
    with tenant_context(a.studio), transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        for _ in range(3):
            list(Membership.objects.all())
    sets = [q for q in ctx.captured_queries if "set_config" in q["sql"]]
    assert len(sets) == 1
    assert len(ctx.captured_queries) == 4


def test_switching_studios_inside_one_transaction_follows_the_context(two_tenants):
    a, b = two_tenants
    with transaction.atomic():
        with tenant_context(a.studio):
            assert _db_studio() == str(a.studio.pk)
            assert Membership.objects.unscoped().get() == a.membership
        with tenant_context(b.studio):
            assert _db_studio() == str(b.studio.pk)
            assert Membership.objects.unscoped().get() == b.membership
        with no_tenant_context():
            # Leaving the context clears the setting: nothing leaks into later queries of the transaction.
            assert _db_studio() == ""


def test_savepoint_rollback_is_followed_by_a_fresh_set(two_tenants):
    a, _ = two_tenants
    with tenant_context(a.studio), transaction.atomic():
        try:
            with transaction.atomic():
                assert Membership.objects.count() == 1
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        # The SET LOCAL made inside the rolled-back savepoint is gone; the wrapper notices and sets again.
        assert Membership.objects.count() == 1
        assert _db_studio() == str(a.studio.pk)


def test_a_reused_atomic_decorator_sets_the_scope_in_each_new_transaction(two_tenants):
    """@transaction.atomic reuses one Atomic object for every call: each call is still a new transaction."""
    a, b = two_tenants

    @transaction.atomic
    def count() -> int:
        return Membership.objects.unscoped().count()

    with tenant_context(a.studio):
        assert count() == 1
        assert count() == 1
    with tenant_context(b.studio):
        assert count() == 1


def test_platform_context_sees_every_studio_at_the_database_level(two_tenants):
    with platform_context():
        assert Membership.objects.unscoped().count() == 2


@pytest.mark.django_db(transaction=True)
def test_real_transactions_and_autocommit_queries(two_tenants):
    """Outside a test transaction: autocommit queries get a short transaction of their own with SET LOCAL,
    each new transaction of a reused @atomic is set again, and nothing stays on the pooled connection."""
    a, b = two_tenants
    assert not connection.in_atomic_block

    @transaction.atomic
    def count() -> int:
        return Membership.objects.unscoped().count()

    with tenant_context(a.studio):
        assert Membership.objects.unscoped().get() == a.membership  # autocommit query
        assert count() == 1
        assert count() == 1
    with tenant_context(b.studio):
        assert count() == 1
        assert Membership.objects.unscoped().get() == b.membership
    # Session level: nothing left behind for the next user of this connection.
    assert _db_studio() == ""
    with no_tenant_context():
        assert Membership.objects.unscoped().count() == 0
