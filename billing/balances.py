"""The ledger stays the truth: recompute every studio's credit balance from its ledger and compare it with the
running balance kept on its billing row (`StudioBilling.balance`); optionally repair it.

`check_balances` reads every studio's ledger sum in one grouped query (a scan of the whole ledger: an operator's
check, never on a request's path), then confirms each difference under the studio's billing row lock, so a ledger
write that lands between the two reads is not reported. `check_usage` does the same for the credits used per day
(`CreditUsageDay`) over the last `USAGE_CHECK_DAYS` days, one grouped query of the ledger since then, each
difference confirmed under the day row's lock; `check_balances` runs it too (so a ledger written around the
application, as bench/web.py seeds it, is brought in line by `check_balances(fix=True)`).
`manage.py billing check-balances [--fix]` runs both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Sum
from django.utils import timezone

from billing.models import (
    USAGE_KINDS,
    CreditEntry,
    CreditUsageDay,
    StudioBilling,
    add_to_balance,
    ledger_day,
    recompute_balance,
    recompute_usage,
    usage_day,
)
from tenants.context import platform_context


@dataclass(frozen=True)
class BalanceDrift:
    """A studio whose running balance is not its ledger's sum (`balance` None: it has entries but no billing
    row). `fixed`: the balance was set to the sum."""

    studio_id: int
    balance: int | None
    ledger: int
    fixed: bool = False

    def describe(self) -> str:
        shown = "no billing row" if self.balance is None else f"balance {self.balance}"
        return f"studio {self.studio_id}: {shown}, ledger sum {self.ledger} ({'fixed' if self.fixed else 'differs'})"


USAGE_CHECK_DAYS = 90


@dataclass(frozen=True)
class UsageDrift:
    """A studio's day whose kept use (`CreditUsageDay.used`; None: no row) is not its ledger's (None: no counted
    entry that day). `fixed`: the row was set to the ledger's figure (made, or removed)."""

    studio_id: int
    day: date
    used: int | None
    ledger: int | None
    fixed: bool = False

    def describe(self) -> str:
        kept = "no usage row" if self.used is None else f"usage {self.used}"
        ledger = "no ledger entry" if self.ledger is None else f"ledger {self.ledger}"
        return f"studio {self.studio_id} on {self.day}: {kept}, {ledger} ({'fixed' if self.fixed else 'differs'})"


def _suspects() -> dict[int, tuple[int | None, int]]:
    grouped = CreditEntry.objects.order_by().values("studio_id").annotate(total=Sum("amount"))
    sums = dict(grouped.values_list("studio_id", "total"))
    balances = dict(StudioBilling.objects.order_by().values_list("studio_id", "balance"))
    suspects: dict[int, tuple[int | None, int]] = {}
    for studio_id in sorted(set(sums) | set(balances)):
        ledger = int(sums.get(studio_id) or 0)
        balance = balances.get(studio_id)
        if balance is None and studio_id not in sums:
            continue
        if balance is None or int(balance) != ledger:
            suspects[studio_id] = (None if balance is None else int(balance), ledger)
    return suspects


def check_usage(*, fix: bool = False, days: int = USAGE_CHECK_DAYS) -> list[UsageDrift]:
    """Every studio's day of the last `days` days (and today) whose kept use differs from its ledger's, confirmed
    under the day row's lock; with `fix`, each is set to the ledger's figure. Runs in the platform context."""
    drifts: list[UsageDrift] = []
    with platform_context():
        since = usage_day(timezone.now() - timedelta(days=days))
        grouped = (
            CreditEntry.objects.filter(kind__in=USAGE_KINDS, created_at__gte=_start_of(since))
            .annotate(day=ledger_day())
            .order_by()
            .values("studio_id", "day")
            .annotate(total=Sum("amount"))
            .values_list("studio_id", "day", "total")
        )
        ledger = {(studio_id, day): -int(total or 0) for studio_id, day, total in grouped}
        kept = {
            (studio_id, day): int(used)
            for studio_id, day, used in CreditUsageDay.objects.order_by()
            .filter(day__gte=since)
            .values_list("studio_id", "day", "used")
        }
        for studio_id, day in sorted(set(ledger) | set(kept)):
            if ledger.get((studio_id, day)) == kept.get((studio_id, day)):
                continue
            used, total = recompute_usage(studio_id=studio_id, day=day, fix=fix)
            if used != total:
                drifts.append(UsageDrift(studio_id=studio_id, day=day, used=used, ledger=total, fixed=fix))
    return drifts


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def check_balances(*, fix: bool = False, usage_days: int = USAGE_CHECK_DAYS) -> list[BalanceDrift | UsageDrift]:
    """Every studio whose running balance differs from its ledger's sum, confirmed under its lock; with `fix`,
    each is set to the sum (a studio with entries and no billing row gets one). Then the same for the credits
    used per day over the last `usage_days` days (`check_usage`). Runs in the platform context."""
    drifts: list[BalanceDrift | UsageDrift] = []
    with platform_context():
        for studio_id, (balance, ledger) in _suspects().items():
            if balance is None and not StudioBilling.objects.filter(studio_id=studio_id).exists():
                if fix:
                    add_to_balance(studio_id=studio_id, amount=0)  # makes the row from the ledger's sum
                drifts.append(BalanceDrift(studio_id=studio_id, balance=None, ledger=ledger, fixed=fix))
                continue
            confirmed = recompute_balance(studio_id=studio_id, fix=fix)
            if confirmed is not None and confirmed[0] != confirmed[1]:
                drifts.append(BalanceDrift(studio_id=studio_id, balance=confirmed[0], ledger=confirmed[1], fixed=fix))
    drifts.extend(check_usage(fix=fix, days=usage_days))
    return drifts
