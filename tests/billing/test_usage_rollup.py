"""The daily usage rollup (issue 16): `CreditUsageDay` holds the credits each studio used per day (minus the sum of
its RESERVE, SETTLE and RELEASE entries of that day), kept with every ledger write, so that `usage_by_day` (the
billing page and API) reads at most 31 rows whatever the ledger's size; the ledger stays the truth, and
`manage.py billing check-balances [--fix]` finds and repairs a day that differs from it."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import credits
from billing.balances import UsageDrift, check_balances, check_usage
from billing.models import CreditEntry, CreditUsageDay, usage_day
from generation import doubles
from jobs.models import Job
from tenants.context import platform_context, tenant_context
from tests.billing.processes import run_released_together
from tests.billing.test_running_balance import PROCESSES
from tests.conftest import Tenant

Kind = CreditEntry.Kind
COST = credits.JobCost(key="render_image_sd15", units=2, unit_cost=3)


def old_usage_by_day(*, days: int = 30) -> list[dict[str, Any]]:
    """The aggregate over the ledger that `usage_by_day` was before the rollup (the oracle), over whole days: from
    the start of the day `days` days ago (the old one began mid-day, at now − `days`)."""
    since = usage_day(timezone.now() - timedelta(days=days))
    start = timezone.make_aware(datetime.combine(since, datetime.min.time()), timezone.get_default_timezone())
    rows = (
        CreditEntry.objects.filter(created_at__gte=start, kind__in=[Kind.RESERVE, Kind.SETTLE, Kind.RELEASE])
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(total=Sum("amount"))
        .order_by("day")
    )
    return [{"day": row["day"], "used": -int(row["total"] or 0)} for row in rows]


def _today_used() -> int | None:
    return CreditUsageDay.objects.filter(day=usage_day(timezone.now())).values_list("used", flat=True).first()


def _job() -> Job:
    return Job.objects.create(kind=doubles.RENDER_KIND, payload={"config": {"seeds": [0, 1]}})


class _Clock:
    """The clock the ledger's `auto_now_add` reads (django.utils.timezone.now), set to a chosen moment."""

    def __init__(self, monkeypatch: Any) -> None:
        self.moment = timezone.now()
        self._real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: self.moment)


@pytest.mark.django_db
def test_every_counted_writer_moves_the_days_figure(billing_settings: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    with tenant_context(b.studio):
        credits.grant(amount=100, reference="in_b")
        credits.reserve(job=_job(), cost=COST)  # a neighbour's use: not a's
    with tenant_context(a.studio):
        credits.grant(amount=100, reference="in_a")
        credits.adjust(amount=-5, reference="operator")
        assert _today_used() is None  # grants and adjustments are not use
        settled, released = _job(), _job()
        credits.reserve(job=settled, cost=COST)
        assert _today_used() == 6
        credits.reserve(job=released, cost=COST)
        assert _today_used() == 12
        settled.state, settled.result = Job.State.SUCCEEDED, {"images": 1}
        credits.settle(job=settled)  # used 3 of 6
        assert _today_used() == 9
        released.state = Job.State.FAILED
        credits.release(job=released)
        assert _today_used() == 3
        CreditEntry.objects.bulk_create(
            [CreditEntry(kind=Kind.RESERVE, amount=-4, reference="bulk"), CreditEntry(kind=Kind.GRANT, amount=9)]
        )
        assert _today_used() == 7
        assert credits.usage_by_day() == old_usage_by_day() == [{"day": usage_day(timezone.now()), "used": 7}]
    with tenant_context(b.studio):
        assert _today_used() == 6
    assert check_usage() == []


@pytest.mark.django_db
def test_usage_by_day_equals_the_old_aggregate_on_a_varied_ledger(
    monkeypatch: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    rng = random.Random(16)
    clock = _Clock(monkeypatch)
    real_now = clock.moment
    a, b = two_tenants
    kinds = list(Kind.values)
    refs = itertools.count()
    for tenant in (a, b):
        with tenant_context(tenant.studio):
            for day_back in range(45, -1, -1):
                if day_back == 3 or rng.random() < 0.2:
                    continue  # a day without entries (day 3: see below)
                for _ in range(rng.randint(1, 4)):
                    # A moment of that day (UTC, the settings' TIME_ZONE), never after now: a moment counted back
                    # from now would fall on the day before after midnight (onto day 3, below).
                    day = (real_now - timedelta(days=day_back)).replace(hour=0, minute=0, second=0, microsecond=0)
                    clock.moment = min(day + timedelta(minutes=rng.randint(0, 1439)), real_now)
                    if rng.random() < 0.5:
                        kind = rng.choice(kinds)
                        CreditEntry.objects.create(kind=kind, amount=rng.randint(-20, 20), reference=f"r{next(refs)}")
                    else:
                        CreditEntry.objects.bulk_create(
                            [
                                CreditEntry(
                                    kind=rng.choice(kinds), amount=rng.randint(-20, 20), reference=f"b{next(refs)}"
                                )
                                for i in range(rng.randint(1, 3))
                            ]
                        )
            # A reservation given back the same day: the day's use is 0, and still shown.
            clock.moment = real_now - timedelta(days=3)
            CreditEntry.objects.bulk_create(
                [CreditEntry(kind=Kind.RESERVE, amount=-5), CreditEntry(kind=Kind.RELEASE, amount=5)]
            )
    clock.moment = real_now
    for tenant in (a, b):
        with tenant_context(tenant.studio):
            for days in (30, 7, 0):
                new, old = credits.usage_by_day(days=days), old_usage_by_day(days=days)
                assert new == old and len(new) <= days + 1
            assert any(row["used"] == 0 for row in credits.usage_by_day())
            assert len(credits.usage_by_day()) > 15
    assert check_usage(days=60) == []


def _usage_queries() -> tuple[list[dict[str, Any]], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        rows = credits.usage_by_day(days=30)
    return rows, [q["sql"] for q in captured.captured_queries if "set_config" not in q["sql"]]


@pytest.mark.django_db
def test_usage_is_one_query_at_any_ledger_size(monkeypatch: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    clock = _Clock(monkeypatch)
    real_now = clock.moment
    a, b = two_tenants

    def fill(count: int) -> None:
        for day_back in range(40):
            clock.moment = real_now - timedelta(days=day_back)
            CreditEntry.objects.bulk_create(
                [CreditEntry(kind=Kind.RESERVE, amount=-1, reference="bulk") for _ in range(count // 40)]
            )
        clock.moment = real_now

    with tenant_context(b.studio):
        fill(5000)  # a big neighbour
    with tenant_context(a.studio):
        fill(40)
        small_rows, small = _usage_queries()
        fill(5000)
        big_rows, big = _usage_queries()
    assert len(small) == len(big) == 1 and "creditentry" not in big[0]
    assert len(small_rows) == len(big_rows) == 31
    assert big_rows[-1]["used"] == 1 + 125
    if connection.vendor == "postgresql":
        with tenant_context(a.studio), connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + big[0])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "creditentry" not in plan and "Aggregate" not in plan, plan


@pytest.mark.django_db
def test_the_billing_page_and_api_read_usage_from_the_rollup(
    billing_settings: Any, client: Any, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a.studio):
        credits.grant(amount=50, reference="in_a")
        credits.reserve(job=_job(), cost=COST)
    client.force_login(tenant_a.owner)
    for path in ("/api/billing/", "/billing/"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"{tenant_a.prefix}{path}")
        assert response.status_code == 200
        assert not [q["sql"] for q in captured.captured_queries if "SUM(" in q["sql"].upper()], path
    data = client.get(f"{tenant_a.prefix}/api/billing/").json()
    assert [row["used"] for row in data["usage"]] == [6]


@pytest.mark.django_db
def test_bulk_create_ignoring_conflicts_recounts_the_day(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        credits.grant(amount=100, reference="in_a")
        job = _job()
        credits.reserve(job=job, cost=COST)
        CreditEntry.objects.bulk_create(
            [
                CreditEntry(kind=Kind.RESERVE, amount=-6, job=job),  # a second reservation: not written
                CreditEntry(kind=Kind.RESERVE, amount=-2, job=_job()),
            ],
            ignore_conflicts=True,
        )
        assert _today_used() == 8 and credits.usage_by_day() == old_usage_by_day()


@pytest.mark.django_db
def test_check_finds_and_fixes_a_broken_day(
    monkeypatch: Any, billing_settings: Any, two_tenants: tuple[Tenant, Tenant], capsys: Any
) -> None:
    a, b = two_tenants
    clock = _Clock(monkeypatch)
    today = usage_day(clock.moment)
    with tenant_context(a.studio):
        credits.grant(amount=100, reference="in_a")
        credits.reserve(job=_job(), cost=COST)
        clock.moment -= timedelta(days=2)
        credits.reserve(job=_job(), cost=COST)
        clock.moment += timedelta(days=2)
    with tenant_context(b.studio):
        credits.grant(amount=100, reference="in_b")
        credits.reserve(job=_job(), cost=COST)
    call_command("billing", "check-balances")
    assert "Every studio's balance and usage equal its ledger's" in capsys.readouterr().out

    with tenant_context(a.studio):
        CreditUsageDay.objects.filter(day=today).update(used=60)  # a lost or doubled update
        CreditUsageDay.objects.filter(day=today - timedelta(days=2)).delete()  # a day missing
        CreditUsageDay.objects.create(day=today - timedelta(days=5), used=3)  # a day without entries
    with tenant_context(b.studio):
        CreditEntry.objects.bulk_create([CreditEntry(kind=Kind.RESERVE, amount=-4)])
        CreditUsageDay.objects.filter(day=today).update(used=6)  # as if written around the application
    with pytest.raises(CommandError, match="4 day"):
        call_command("billing", "check-balances")
    out = capsys.readouterr().out
    assert f"studio {a.studio.pk} on {today}: usage 60, ledger 6 (differs)" in out
    assert f"studio {a.studio.pk} on {today - timedelta(days=2)}: no usage row, ledger 6 (differs)" in out
    assert f"studio {a.studio.pk} on {today - timedelta(days=5)}: usage 3, no ledger entry (differs)" in out
    assert f"studio {b.studio.pk} on {today}: usage 6, ledger 10 (differs)" in out
    with tenant_context(a.studio):
        assert _today_used() == 60  # a check alone changes nothing

    call_command("billing", "check-balances", "--fix")
    assert "4 day(s) of usage set to the ledger's figures" in capsys.readouterr().out
    assert check_balances() == []
    for tenant in (a, b):
        with tenant_context(tenant.studio):
            assert credits.usage_by_day() == old_usage_by_day()
    with tenant_context(a.studio):
        assert [row["used"] for row in credits.usage_by_day()] == [6, 6]


@pytest.mark.django_db
def test_fixing_balances_fills_the_rollup_of_a_ledger_written_around_the_application(tenant_a: Tenant) -> None:
    """As bench/web.py seeds its ledger (raw SQL, then `check_balances(fix=True)`): the last 90 days are filled."""
    now = timezone.now()
    table = CreditEntry._meta.db_table
    with platform_context(), connection.cursor() as cursor:
        for day_back in (0, 1, 29, 89, 120):
            cursor.execute(
                f"INSERT INTO {table} (studio_id, kind, amount, reference, created_at) VALUES (%s, %s, %s, '', %s)",
                [tenant_a.studio.pk, "reserve", -(day_back + 1), now - timedelta(days=day_back)],
            )
    drifts = check_balances(fix=True)
    assert len([d for d in drifts if isinstance(d, UsageDrift)]) == 4  # the day 120 days ago is outside the check
    with tenant_context(tenant_a.studio):
        assert credits.usage_by_day() == old_usage_by_day() and len(credits.usage_by_day()) == 3
        assert credits.balance() == -(1 + 2 + 30 + 90 + 121)
    assert check_balances() == []


# --- Several processes at once (PostgreSQL) -------------------------------------------------------------------

ROUNDS = 15

_WORKER = """
import sys, time
from pathlib import Path
import django
django.setup()
from billing import credits
from billing.models import CreditEntry
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
        credits.reserve(job=settled, cost=cost)      # 6 used
        credits.reserve(job=released, cost=cost)     # 6 used
        settled.state = Job.State.SUCCEEDED
        credits.settle(job=settled, used=3)          # 3 back
        released.state = Job.State.FAILED
        credits.release(job=released)                # 6 back
        # Without the studio's lock: a bulk reservation of a job of its own.
        CreditEntry.objects.bulk_create([CreditEntry(kind="reserve", amount=-2, job=Job.objects.create(
            kind=doubles.RENDER_KIND, payload={}))])   # 2 used
print("done", n)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_processes_keep_the_rollup_equal_to_the_ledger(
    billing_settings: Any, tenant_a: Tenant, tmp_path: Path
) -> None:
    """Real processes on the test database (as the application role, row-level security on), released at once, on
    a day without a rollup row yet (the first writers race to make it): each round uses 3 + 2 credits."""
    with tenant_context(tenant_a.studio):
        credits.grant(amount=10_000, reference="in_start")
        assert not CreditUsageDay.objects.exists()
    run_released_together(_WORKER, studio_id=tenant_a.studio.pk, processes=PROCESSES, rounds=ROUNDS, folder=tmp_path)
    with tenant_context(tenant_a.studio):
        used = sum(row["used"] for row in credits.usage_by_day())
        assert used == sum(row["used"] for row in old_usage_by_day()) == PROCESSES * ROUNDS * 5
    assert check_balances() == []


# --- The migration's backfill ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_rollup_from_the_ledger(two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.test_migrations import _as_owner

    a, b = two_tenants
    now = timezone.now().astimezone(UTC)
    yesterday = now - timedelta(days=1)
    with _as_owner():
        executor = MigrationExecutor(connection)
        latest = executor.loader.graph.leaf_nodes()
        try:
            executor.migrate([("billing", "0005_running_balance")])
            old = MigrationExecutor(connection).loader.project_state([("billing", "0005_running_balance")]).apps
            OldEntry = old.get_model("billing", "CreditEntry")
            with platform_context():
                rows = [
                    (a.studio, "reserve", -6, now),
                    (a.studio, "settle", 2, now),
                    (a.studio, "grant", 100, now),  # not use
                    (a.studio, "reserve", -9, yesterday),
                    (a.studio, "release", 9, yesterday),  # used 0 that day
                    (b.studio, "reserve", -7, yesterday),
                ]
                made = OldEntry.objects.bulk_create([OldEntry(studio_id=s.pk, kind=k, amount=x) for s, k, x, _ in rows])
                for entry, (_, _, _, moment) in zip(made, rows, strict=True):
                    OldEntry.objects.filter(pk=entry.pk).update(created_at=moment)
            MigrationExecutor(connection).migrate(latest)
        finally:
            executor = MigrationExecutor(connection)
            executor.loader.build_graph()
            executor.migrate(executor.loader.graph.leaf_nodes())
    with tenant_context(a.studio):
        assert list(CreditUsageDay.objects.order_by("day").values_list("day", "used")) == [
            (usage_day(yesterday), 0),
            (usage_day(now), 4),
        ]
        assert credits.usage_by_day() == old_usage_by_day()
    with tenant_context(b.studio):
        assert list(CreditUsageDay.objects.values_list("day", "used")) == [(usage_day(yesterday), 7)]
    assert check_usage() == []


def test_the_day_is_the_date_in_the_default_time_zone() -> None:
    late = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert settings.TIME_ZONE == "UTC"
    assert usage_day(late) == date(2026, 3, 1) and usage_day(late + timedelta(seconds=1)) == date(2026, 3, 2)
