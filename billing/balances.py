"""The ledger stays the truth: recompute every studio's credit balance from its ledger and compare it with the
running balance kept on its billing row (`StudioBilling.balance`); optionally repair it.

`check_balances` reads every studio's ledger sum in one grouped query (a scan of the whole ledger: an operator's
check, never on a request's path), then confirms each difference under the studio's billing row lock, so a ledger
write that lands between the two reads is not reported. `manage.py billing check-balances [--fix]` runs it."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from billing.models import CreditEntry, StudioBilling, add_to_balance, recompute_balance
from tenants.context import platform_context


@dataclass(frozen=True)
class BalanceDrift:
    """A studio whose running balance is not its ledger's sum (`balance` None: it has entries but no billing
    row). `fixed`: the balance was set to the sum."""

    studio_id: int
    balance: int | None
    ledger: int
    fixed: bool = False


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


def check_balances(*, fix: bool = False) -> list[BalanceDrift]:
    """Every studio whose running balance differs from its ledger's sum, confirmed under its lock; with `fix`,
    each is set to the sum (a studio with entries and no billing row gets one). Runs in the platform context."""
    drifts: list[BalanceDrift] = []
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
    return drifts
