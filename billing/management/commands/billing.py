"""`manage.py billing check-balances [--fix]`: recompute every studio's credit balance from its ledger (the truth)
and report each studio whose running balance (`StudioBilling.balance`) differs; `--fix` sets it to the ledger's
sum. The credits used per day (`CreditUsageDay`) over the last 90 days are checked and fixed the same way.
Exits 1 when a difference is found and not fixed, so a scheduled run can alert."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.balances import BalanceDrift, check_balances


class Command(BaseCommand):
    help = "Billing maintenance. check-balances: compare running credit balances and daily usage with the ledger."

    def add_arguments(self, parser: Any) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("check-balances", help="Recompute balances from the ledger and compare.")
        check.add_argument(
            "--fix", action="store_true", help="Set each differing balance and day of usage to the ledger's figure."
        )

    def handle(self, *args: Any, action: str, fix: bool = False, **options: Any) -> None:
        if action != "check-balances":  # pragma: no cover (argparse refuses other actions)
            raise CommandError(f"Unknown action {action!r}.")
        drifts = check_balances(fix=fix)
        for drift in drifts:
            self.stdout.write(drift.describe())
        balances = sum(isinstance(d, BalanceDrift) for d in drifts)
        days = len(drifts) - balances
        found = ", ".join(
            part
            for part in (f"{balances} balance(s)" if balances else "", f"{days} day(s) of usage" if days else "")
            if part
        )
        if not drifts:
            self.stdout.write(self.style.SUCCESS("Every studio's balance and usage equal its ledger's."))
        elif fix:
            self.stdout.write(self.style.SUCCESS(f"{found} set to the ledger's figures."))
        else:
            raise CommandError(f"{found} differ from the ledger; run with --fix to repair.")
