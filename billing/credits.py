"""The GPU credit ledger (writes and reads). Append-only: a balance is the sum of the studio's entries, kept
running in `StudioBilling.balance` by every ledger write (billing.models: `CreditEntry.save` and `bulk_create` move
it in the entry's transaction), so reading it is one row whatever the ledger's size; `billing.balances` recomputes
it from the ledger and compares. The credits used per day are kept the same way (`CreditUsageDay`), so the
billing page's month of usage is at most 31 rows.

The life of a job's credits:
- queued: `reserve_for_job` takes its cost (RESERVE, negative), refused with `OutOfCredits` when the studio's
  balance (plus its plan's overage allowance) is below the cost;
- succeeded: `settle` gives back what it did not use (SETTLE = reserved − used; used = the units it really
  produced × the unit cost fixed at reservation: images rendered, or the training);
- failed or cancelled: `release` gives the whole reservation back (RELEASE).
Each is written at most once per job (unique constraints), under a lock on the studio's StudioBilling row, so a
double call, a retried task or two concurrent ones change nothing twice. All calls run in the current tenant
context.

Overage: when a settlement leaves the balance below zero (a plan with an overage allowance let the job start),
the part of the job's use that the balance did not cover is billed: an OVERAGE entry (+n, reference "job:<id>")
brings it back, and a Stripe invoice item (idempotency key per studio and job) is created on commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing import plans
from billing.models import CreditEntry, CreditUsageDay, StudioBilling, usage_day
from jobs.models import Job
from jobs.registry import JobKind, registered_kinds
from tenants.context import current_studio_id, tenant_context
from tenants.refusals import Refused

log = structlog.get_logger("billing.credits")

Kind = CreditEntry.Kind


class OutOfCredits(Refused):
    """The studio has too few credits for a new job (402). `message` is for people and names the billing page."""

    status = 402
    code = "out_of_credits"

    def __init__(self, *, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        self.upgrade_url = billing_url()
        super().__init__(
            f"Your studio is out of GPU credits: this needs {needed} credit{'s' if needed != 1 else ''} and "
            f"{max(available, 0)} {'is' if max(available, 0) == 1 else 'are'} left. Running jobs finish; to start "
            f"new ones, upgrade your plan on the billing page: {self.upgrade_url}"
        )


def billing_url() -> str:
    try:
        return reverse("billing")
    except NoReverseMatch:  # a URLconf without the studio's pages (the platform's)
        return "/billing/"


@dataclass(frozen=True)
class JobCost:
    key: str  # a key of plans.credit_costs(), e.g. "render_image_sd15"
    units: int  # images to render, or 1 training
    unit_cost: int

    @property
    def amount(self) -> int:
        return self.units * self.unit_cost

    @property
    def reference(self) -> str:
        return f"{self.key}:{self.units}x{self.unit_cost}"


# --- Reads ----------------------------------------------------------------------------------------------------


def balance(*, billing: StudioBilling | None = None) -> int:
    """The current studio's credits: the sum of its ledger (reservations of queued and running jobs included), as
    kept running on its billing row: `billing`'s when given (no query), else one single-row query."""
    if billing is not None:
        return int(billing.balance)
    return int(StudioBilling.objects.values_list("balance", flat=True).first() or 0)


def usage_by_day(*, days: int = 30) -> list[dict[str, Any]]:
    """Credits used per day over the last `days` days and today (reservations less what was given back), whole
    days in settings.TIME_ZONE: read from the rollup kept with the ledger (`CreditUsageDay`), one query of at most
    `days` + 1 rows whatever the ledger's size."""
    since = usage_day(timezone.now() - timedelta(days=days))
    rows = CreditUsageDay.objects.filter(day__gte=since).order_by("day").values_list("day", "used")
    return [{"day": day, "used": int(used)} for day, used in rows]


def used_since(*, day: date) -> int:
    """Credits used from `day` on (today included), from the rollup kept with the ledger: one query of at most a
    month's rows when `day` starts the month."""
    total = CreditUsageDay.objects.filter(day__gte=day).aggregate(total=Sum("used"))["total"]
    return int(total or 0)


def job_cost(job: Any) -> JobCost | None:
    """What a job costs: the Charge its kind declares (jobs.registry: every GPU kind has one), priced from the
    plan's credit costs. None for a kind without a cost (CPU work) or one this process does not know."""
    kind = registered_kinds().get(job.kind)
    if kind is None or kind.cost is None:
        return None
    charge = kind.cost(job.payload or {})
    key = charge.item
    return JobCost(key=key, units=max(int(charge.units), 1), unit_cost=plans.cost(key, charge.fallback or key))


# --- Writes ---------------------------------------------------------------------------------------------------


def _locked_billing() -> StudioBilling:
    """The studio's billing row, created on first use, locked for the rest of the transaction: every ledger
    write of one studio is serialised on it."""
    if not StudioBilling.objects.filter().exists():
        try:
            with transaction.atomic():
                StudioBilling.objects.create()
        except IntegrityError:  # created meanwhile by a concurrent call
            pass
    return StudioBilling.objects.select_for_update().get()


def overage_allowance(billing: StudioBilling) -> int:
    """How far below zero the balance may go for new jobs: the plan's overage limit while its subscription is
    active, else 0."""
    plan = plans.get_plan(billing.plan)
    if plan is None or billing.subscription_status not in ("active", "trialing"):
        return 0
    return max(plan.overage_limit, 0)


def reserve(*, job: Any, cost: JobCost) -> CreditEntry:
    """Reserve `cost` for the job, or raise OutOfCredits. Idempotent: a second call returns the first entry."""
    with transaction.atomic():
        billing = _locked_billing()
        existing = CreditEntry.objects.filter(job=job, kind=Kind.RESERVE).first()
        if existing is not None:
            return existing
        # The running balance of the row just locked: no ledger write of this studio can move it meanwhile.
        available = billing.balance + overage_allowance(billing)
        if available < cost.amount:
            log.info("credits_refused", job_id=job.pk, needed=cost.amount, available=available)
            raise OutOfCredits(needed=cost.amount, available=billing.balance)
        entry = CreditEntry.objects.create(kind=Kind.RESERVE, amount=-cost.amount, job=job, reference=cost.reference)
    log.info("credits_reserved", job_id=job.pk, amount=cost.amount, reference=cost.reference)
    return entry


def reserve_for_job(*, job: Any) -> CreditEntry | None:
    """Called when a job is queued, in the same transaction (the job system's enqueue hook, registered in
    billing.apps): reserves its cost when credits are enforced and its kind is costed (else a no-op returning
    None). Raises OutOfCredits; the caller's transaction then rolls the job back too."""
    if not plans.enforce_credits():
        return None
    cost = job_cost(job)
    if cost is None:
        return None
    return reserve(job=job, cost=cost)


def _parse_reference(reference: str) -> tuple[int, int]:
    """(units, unit cost) of a reservation's reference "key:UxC"."""
    try:
        units, unit_cost = reference.rsplit(":", 1)[1].split("x", 1)
        return int(units), int(unit_cost)
    except (IndexError, ValueError):
        return 0, 0


def on_job_queued(job: Job, kind: JobKind) -> None:
    """The job system's enqueue hook for costed kinds (billing.apps registers it)."""
    reserve_for_job(job=job)


def used_by(job: Any, reservation: CreditEntry) -> int:
    """The credits a succeeded job really used: the units it produced (its kind's `units_used` of its result, at
    most what was reserved; every unit when the kind doesn't say) × the unit cost fixed at reservation."""
    units, unit_cost = _parse_reference(reservation.reference)
    if units <= 0 or unit_cost <= 0:
        return -reservation.amount
    done = units
    kind = registered_kinds().get(job.kind)
    if kind is not None and kind.units_used is not None:
        produced = kind.units_used(job.result or {})
        if isinstance(produced, int) and not isinstance(produced, bool):
            done = max(0, min(produced, units))
    return done * unit_cost


def _job_entries(job: Any) -> list[CreditEntry]:
    return list(CreditEntry.objects.filter(job=job))


def settle(*, job: Any, used: int | None = None) -> CreditEntry | None:
    """The job succeeded: bring its net charge to what it used (default: `used_by`). Idempotent; a no-op (None)
    for a job without a reservation. A job retried after a release is charged what it used then."""
    with transaction.atomic():
        _locked_billing()
        entries = _job_entries(job)
        reservation = next((e for e in entries if e.kind == Kind.RESERVE), None)
        if reservation is None:
            return None
        done = next((e for e in entries if e.kind == Kind.SETTLE), None)
        if done is not None:
            return done
        used = used_by(job, reservation) if used is None else max(int(used), 0)
        net = sum(e.amount for e in entries)  # what the job holds now (negative)
        entry = CreditEntry.objects.create(kind=Kind.SETTLE, amount=-used - net, job=job, reference=f"used:{used}")
        _bill_overage(job=job, used=used)
    log.info("credits_settled", job_id=job.pk, used=used, back=entry.amount)
    return entry


def release(*, job: Any) -> CreditEntry | None:
    """The job failed or was cancelled: give back everything it holds. Idempotent; a no-op (None) for a job
    without a reservation or already settled or released."""
    with transaction.atomic():
        _locked_billing()
        entries = _job_entries(job)
        if not any(e.kind == Kind.RESERVE for e in entries):
            return None
        done = next((e for e in entries if e.kind in (Kind.SETTLE, Kind.RELEASE)), None)
        if done is not None:
            return done
        net = sum(e.amount for e in entries)
        entry = CreditEntry.objects.create(kind=Kind.RELEASE, amount=-net, job=job, reference=job.state)
    log.info("credits_released", job_id=job.pk, back=entry.amount)
    return entry


def job_finished(job: Any) -> None:
    """Settle or release a finished job's credits, in the transaction that makes it succeeded, failed or
    cancelled. Runs for the job's studio (the sweeper ends jobs in the platform context). A no-op for a job
    without a reservation: CPU kinds, or a job queued while credits were not enforced."""
    if job.state not in (Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED):
        return
    kind = registered_kinds().get(job.kind)
    if kind is None or not kind.is_costed:
        return
    if current_studio_id() != job.studio_id:
        with tenant_context(job.studio):
            job_finished(job)
        return
    if job.state == Job.State.SUCCEEDED:
        settle(job=job)
    else:
        release(job=job)


def on_job_finished(sender: Any, job: Job, **kwargs: Any) -> None:
    """The job system's job_finished signal (billing.apps connects it)."""
    job_finished(job)


def grant(*, amount: int, kind: str = Kind.GRANT, reference: str) -> CreditEntry:
    """Add credits once per reference (an invoice id): a second call returns the first entry."""
    with transaction.atomic():
        _locked_billing()
        existing = CreditEntry.objects.filter(kind=kind, reference=reference).first()
        if existing is not None:
            return existing
        entry = CreditEntry.objects.create(kind=kind, amount=int(amount), reference=reference)
    log.info("credits_granted", kind=kind, amount=amount, reference=reference)
    return entry


def adjust(*, amount: int, reference: str) -> CreditEntry:
    """A platform operator's correction (admin)."""
    return CreditEntry.objects.create(kind=Kind.ADJUSTMENT, amount=int(amount), reference=reference[:120])


def _bill_overage(*, job: Any, used: int) -> None:
    """After a settlement (lock held): bill the part of the job's use that the balance does not cover."""
    billing = StudioBilling.objects.get()  # fresh: the settlement has just moved its balance
    deficit = -billing.balance
    if deficit <= 0:
        return
    credits = min(deficit, used)
    if credits <= 0:
        return
    reference = f"job:{job.pk}"
    if CreditEntry.objects.filter(kind=Kind.OVERAGE, reference=reference).exists():
        return
    CreditEntry.objects.create(kind=Kind.OVERAGE, amount=credits, job=job, reference=reference)
    plan = plans.get_plan(billing.plan)
    log.info("credits_overage", job_id=job.pk, credits=credits)
    if plan is None or not billing.stripe_customer_id or plan.overage_unit_price <= 0:
        return
    from billing import subscriptions  # billing.subscriptions imports this module

    transaction.on_commit(
        lambda: subscriptions.create_overage_invoice_item(
            customer_id=billing.stripe_customer_id, plan=plan, credits=credits, job_id=job.pk, studio_id=job.studio_id
        )
    )
