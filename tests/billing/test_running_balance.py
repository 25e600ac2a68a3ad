"""The running credit balance (issue 16): `StudioBilling.balance` is the ledger's sum kept with every ledger write,
so reading it is one single-row query whatever the ledger's size; the ledger stays the truth, and
`manage.py billing check-balances [--fix]` finds and repairs a balance that differs from it. Several real
processes reserving, settling, releasing and granting at once on PostgreSQL lose no update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F, Sum
from django.test.utils import CaptureQueriesContext

from billing import credits
from billing.balances import check_balances
from billing.models import CreditEntry, StudioBilling
from generation import doubles
from jobs.models import Job
from tenants.context import platform_context, tenant_context
from tests.billing.processes import run_released_together
from tests.conftest import Tenant

Kind = CreditEntry.Kind
COST = credits.JobCost(key="render_image_sd15", units=2, unit_cost=3)


def _ledger_sum() -> int:
    return int(CreditEntry.objects.aggregate(total=Sum("amount"))["total"] or 0)


def _stored_balance() -> int:
    return StudioBilling.objects.values_list("balance", flat=True).get()


def _job() -> Job:
    return Job.objects.create(kind=doubles.RENDER_KIND, payload={"config": {"seeds": [0, 1]}})


def _entries(count: int, amount: int = 1) -> list[CreditEntry]:
    return CreditEntry.objects.bulk_create(
        [CreditEntry(kind=Kind.ADJUSTMENT, amount=amount, reference=f"bulk {i}") for i in range(count)]
    )


@pytest.mark.django_db
def test_every_ledger_write_moves_the_running_balance(
    billing_settings: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = two_tenants
    with tenant_context(b.studio):
        credits.grant(amount=1000, reference="in_b")
    with tenant_context(a.studio):
        CreditEntry.objects.create(kind=Kind.ADJUSTMENT, amount=5, reference="first entry: makes the billing row")
        assert _stored_balance() == 5
        credits.grant(amount=100, reference="in_a")
        credits.grant(amount=100, reference="in_a")  # once per reference
        settled, released = _job(), _job()
        credits.reserve(job=settled, cost=COST)
        credits.reserve(job=released, cost=COST)
        assert credits.balance() == 105 - 12
        settled.state, settled.result = Job.State.SUCCEEDED, {"images": 1}
        credits.settle(job=settled)  # used 1 of 2: 3 back
        released.state = Job.State.FAILED
        credits.release(job=released)
        credits.adjust(amount=-7, reference="operator")
        _entries(3, amount=2)
        assert credits.balance() == _ledger_sum() == 105 - 3 - 7 + 6
    with tenant_context(b.studio):
        assert credits.balance() == _ledger_sum() == 1000


@pytest.mark.django_db
def test_overage_and_refusal_read_the_running_balance(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        StudioBilling.objects.create(plan="studio", subscription_status="active")  # an overage allowance
        credits.grant(amount=2, reference="in_small")
        job = _job()
        credits.reserve(job=job, cost=COST)  # 6 against 2: the allowance lets it start
        job.state, job.result = Job.State.SUCCEEDED, {"images": 2}
        credits.settle(job=job)
        overage = CreditEntry.objects.get(kind=Kind.OVERAGE)
        assert overage.amount == 4 and credits.balance() == _ledger_sum() == 0
        StudioBilling.objects.filter().update(subscription_status="canceled")
        with pytest.raises(credits.OutOfCredits) as refused:
            credits.reserve(job=_job(), cost=COST)
        assert refused.value.available == 0 and refused.value.needed == 6


@pytest.mark.django_db
def test_a_stale_billing_row_saved_later_keeps_the_balance(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        stale = StudioBilling.objects.create()
        credits.grant(amount=40, reference="in_1")
        stale.plan = "studio"
        stale.save()  # read before the grant: its balance (0) must not be written back
        StudioBilling.objects.update_or_create(defaults={"subscription_status": "active"})
        row = StudioBilling.objects.get()
        assert (row.plan, row.subscription_status, row.balance) == ("studio", "active", 40)


@pytest.mark.django_db
def test_the_ledger_is_append_only(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        entry = CreditEntry.objects.create(kind=Kind.ADJUSTMENT, amount=3, reference="x")
        entry.amount = 300
        with pytest.raises(ValueError, match="append-only"):
            entry.save()
        with pytest.raises(ValueError, match="append-only"):
            CreditEntry.objects.bulk_create([CreditEntry(kind=Kind.ADJUSTMENT, amount=1)], update_conflicts=True)
        assert credits.balance() == _ledger_sum() == 3


@pytest.mark.django_db
def test_bulk_create_ignoring_conflicts_recounts_from_the_ledger(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        credits.grant(amount=10, reference="in_1")
        CreditEntry.objects.bulk_create(
            [
                CreditEntry(kind=Kind.GRANT, amount=10, reference="in_1"),  # a duplicate: not written
                CreditEntry(kind=Kind.GRANT, amount=5, reference="in_2"),
            ],
            ignore_conflicts=True,
        )
        assert credits.balance() == _ledger_sum() == 15


def _balance_queries() -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        value = credits.balance()
    return value, [q["sql"] for q in captured.captured_queries if "set_config" not in q["sql"]]


@pytest.mark.django_db
def test_reading_the_balance_is_one_query_at_any_ledger_size(
    billing_settings: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = two_tenants
    with tenant_context(b.studio):
        _entries(5000)  # a big neighbour
    with tenant_context(a.studio):
        _entries(20)
        credits.reserve(job=_job(), cost=COST)  # the day's first use makes its usage row (one INSERT more)
        small_value, small = _balance_queries()
        with CaptureQueriesContext(connection) as reserve_small:
            credits.reserve(job=_job(), cost=COST)
        _entries(5000)
        big_value, big = _balance_queries()
        with CaptureQueriesContext(connection) as reserve_big:
            credits.reserve(job=_job(), cost=COST)
        assert (small_value, big_value) == (20 - 6, 5020 - 12)
        assert len(small) == len(big) == 1 and "creditentry" not in big[0]
        assert len(reserve_small.captured_queries) == len(reserve_big.captured_queries)
        reads = [q["sql"] for q in reserve_big.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        assert not any("SUM(" in sql.upper() for sql in reads)  # no aggregate over the ledger under the lock
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + big[0])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "creditentry" not in plan and "Aggregate" not in plan, plan


@pytest.mark.django_db
def test_the_billing_api_reads_the_balance_without_summing_the_ledger(
    billing_settings: Any, client: Any, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a.studio):
        _entries(50, amount=2)
    client.force_login(tenant_a.owner)
    with CaptureQueriesContext(connection) as captured:
        data = client.get(f"{tenant_a.prefix}/api/billing/").json()
    assert data["credits_balance"] == 100
    ledger_sums = [q["sql"] for q in captured.captured_queries if 'SUM("billing_creditentry"."amount")' in q["sql"]]
    assert ledger_sums == []  # the 30 days of usage are read from their rollup (tests/billing/test_usage_rollup.py)


@pytest.mark.django_db
def test_check_balances_finds_and_fixes_a_broken_balance(
    billing_settings: Any, two_tenants: tuple[Tenant, Tenant], capsys: Any
) -> None:
    a, b = two_tenants
    with tenant_context(a.studio):
        credits.grant(amount=30, reference="in_a")
    with tenant_context(b.studio):
        credits.grant(amount=20, reference="in_b")
    call_command("billing", "check-balances")
    assert "balance and usage equal its ledger's" in capsys.readouterr().out

    with tenant_context(a.studio):
        StudioBilling.objects.filter().update(balance=F("balance") + 7)  # a lost or doubled update
    with tenant_context(b.studio):
        StudioBilling.objects.filter().delete()  # entries, but no billing row
    with pytest.raises(CommandError, match="2 balance"):
        call_command("billing", "check-balances")
    out = capsys.readouterr().out
    assert f"studio {a.studio.pk}: balance 37, ledger sum 30 (differs)" in out
    assert f"studio {b.studio.pk}: no billing row, ledger sum 20 (differs)" in out
    with tenant_context(a.studio):
        assert credits.balance() == 37  # a check alone changes nothing

    call_command("billing", "check-balances", "--fix")
    assert "2 balance(s) set to the ledger's figures" in capsys.readouterr().out
    assert check_balances() == []
    with tenant_context(a.studio):
        assert credits.balance() == 30
    with tenant_context(b.studio):
        assert credits.balance() == 20


# --- Several processes at once (PostgreSQL) -------------------------------------------------------------------

PROCESSES = 4
ROUNDS = 20

_WORKER = """
import os, sys, time
from pathlib import Path
import django
django.setup()
from billing import credits
from generation import doubles
from jobs.models import Job
from tenants.context import tenant_context
from tenants.models import Studio

studio_id, n, rounds, folder = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
cost = credits.JobCost(key="render_image_sd15", units=2, unit_cost=3)
studio = Studio.objects.get(pk=studio_id)
(folder / f"ready-{n}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
with tenant_context(studio):
    for i in range(rounds):
        settled = Job.objects.create(kind=doubles.RENDER_KIND, payload={})
        released = Job.objects.create(kind=doubles.RENDER_KIND, payload={})
        credits.reserve(job=settled, cost=cost)      # -6
        credits.reserve(job=released, cost=cost)     # -6
        settled.state = Job.State.SUCCEEDED
        credits.settle(job=settled, used=3)          # +3
        released.state = Job.State.FAILED
        credits.release(job=released)                # +6
        credits.grant(amount=1, reference=f"in_{n}_{i}")  # +1
        credits.adjust(amount=1, reference=f"operator {n} {i}")  # +1, without the studio's lock
print("done", n)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_processes_lose_no_update(billing_settings: Any, tenant_a: Tenant, tmp_path: Path) -> None:
    """Real processes on the test database (as the application role, row-level security on), released at once:
    each round reserves two jobs, settles one, releases the other, grants a credit and adjusts one (an operator's
    write, which takes no lock first): net −1."""
    with tenant_context(tenant_a.studio):
        credits.grant(amount=1000, reference="in_start")
    run_released_together(_WORKER, studio_id=tenant_a.studio.pk, processes=PROCESSES, rounds=ROUNDS, folder=tmp_path)
    with tenant_context(tenant_a.studio):
        assert CreditEntry.objects.count() == 1 + PROCESSES * ROUNDS * 6
        assert _ledger_sum() == 1000 - PROCESSES * ROUNDS
        assert credits.balance() == _ledger_sum()
    assert check_balances() == []


# --- The migration's backfill ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_each_balance_from_its_ledger(two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.test_migrations import _as_owner

    a, b = two_tenants
    with tenant_context(a.studio):
        StudioBilling.objects.create(plan="studio")
    with _as_owner():
        executor = MigrationExecutor(connection)
        latest = executor.loader.graph.leaf_nodes()
        try:
            executor.migrate([("billing", "0004_job_in_jobs_app")])
            old = MigrationExecutor(connection).loader.project_state([("billing", "0004_job_in_jobs_app")]).apps
            OldEntry = old.get_model("billing", "CreditEntry")
            with platform_context():
                for studio, amounts in ((a.studio, [50, -8, 3]), (b.studio, [7])):
                    OldEntry.objects.bulk_create(
                        [OldEntry(studio_id=studio.pk, kind="adjustment", amount=x) for x in amounts]
                    )
            MigrationExecutor(connection).migrate(latest)
        finally:
            executor = MigrationExecutor(connection)
            executor.loader.build_graph()
            executor.migrate(executor.loader.graph.leaf_nodes())
    with tenant_context(a.studio):
        row = StudioBilling.objects.get()
        assert (row.plan, row.balance) == ("studio", 45)
    with tenant_context(b.studio):
        assert StudioBilling.objects.get().balance == 7  # made by the migration: b had entries and no row
    assert check_balances() == []
