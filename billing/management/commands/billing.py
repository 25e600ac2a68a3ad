"""`manage.py billing check-balances [--fix]`: recompute every studio's credit balance from its ledger (the truth)
and report each studio whose running balance (`StudioBilling.balance`) differs; `--fix` sets it to the ledger's
sum. Exits 1 when a difference is found and not fixed, so a scheduled run can alert."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.balances import check_balances


class Command(BaseCommand):
    help = "Billing maintenance. check-balances: compare each studio's running credit balance with its ledger."

    def add_arguments(self, parser: Any) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("check-balances", help="Recompute balances from the ledger and compare.")
        check.add_argument("--fix", action="store_true", help="Set each differing balance to its ledger's sum.")

    def handle(self, *args: Any, action: str, fix: bool = False, **options: Any) -> None:
        if action != "check-balances":  # pragma: no cover (argparse refuses other actions)
            raise CommandError(f"Unknown action {action!r}.")
        drifts = check_balances(fix=fix)
        for drift in drifts:
            shown = "no billing row" if drift.balance is None else f"balance {drift.balance}"
            verb = "fixed" if drift.fixed else "differs"
            self.stdout.write(f"studio {drift.studio_id}: {shown}, ledger sum {drift.ledger} ({verb})")
        if not drifts:
            self.stdout.write(self.style.SUCCESS("Every studio's balance equals its ledger's sum."))
        elif fix:
            self.stdout.write(self.style.SUCCESS(f"{len(drifts)} balance(s) set to the ledger's sum."))
        else:
            raise CommandError(f"{len(drifts)} balance(s) differ from the ledger; run with --fix to repair.")
