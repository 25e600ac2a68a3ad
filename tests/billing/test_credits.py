"""The GPU credit ledger: reserve / settle / release math and idempotency, refusal when credits run out (page and
API: 402 with the message and the billing link), and settlement through the real job runner."""

from __future__ import annotations

from typing import Any

import pytest

from billing import credits
from billing.models import CreditEntry
from generation import doubles, portraits, runs
from generation.models import RenderRun
from jobs.models import Job
from jobs.services import cancel_job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    start_test_render_job,
    tiny_engine_fixture,
)

pytestmark = pytest.mark.django_db
Kind = CreditEntry.Kind


def _job(kind: str = doubles.RENDER_KIND, seeds: int = 4) -> Job:
    return Job.objects.create(kind=kind, payload={"config": {"seeds": list(range(seeds))}})


def _give(amount: int) -> None:
    credits.grant(amount=amount, reference=f"in_test_{amount}")


def test_reserve_settle_release_math_and_idempotency(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        _give(10)
        job = _job(seeds=4)
        first = credits.reserve_for_job(job=job)
        again = credits.reserve_for_job(job=job)
        assert first is not None and again is not None and first.pk == again.pk and first.amount == -4
        assert credits.balance() == 6
        job.state, job.result = Job.State.SUCCEEDED, {"images": 3}
        settled = credits.settle(job=job)
        assert settled is not None and settled.amount == 1  # used 3 of the 4 reserved
        assert credits.settle(job=job).pk == settled.pk and credits.release(job=job).pk == settled.pk
        assert credits.balance() == 7
        assert CreditEntry.objects.filter(job=job).count() == 2

        failed = _job(seeds=2)
        credits.reserve_for_job(job=failed)
        failed.state = Job.State.FAILED
        credits.job_finished(failed)
        credits.job_finished(failed)
        assert CreditEntry.objects.filter(job=failed, kind=Kind.RELEASE).get().amount == 2
        assert credits.settle(job=failed) is not None  # a retried job that then succeeds pays what it used
        assert credits.balance() == 7 - 2


def test_a_job_without_reservation_settles_nothing(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        job = _job()
        job.state = Job.State.SUCCEEDED
        credits.job_finished(job)
        assert credits.settle(job=job) is None and credits.release(job=job) is None
        assert not CreditEntry.objects.exists()


def test_grant_is_once_per_reference(billing_settings: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        credits.grant(amount=100, reference="in_1")
        credits.grant(amount=100, reference="in_1")
        assert credits.balance() == 100


def test_ledger_is_per_studio(billing_settings: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    with tenant_context(a.studio):
        _give(50)
    with tenant_context(b.studio):
        assert credits.balance() == 0
        with pytest.raises(credits.OutOfCredits):
            credits.reserve_for_job(job=_job())


def test_not_enforced_reserves_nothing(settings: Any, tenant_a: Tenant) -> None:
    settings.BILLING_ENFORCE_CREDITS = False
    with tenant_context(tenant_a.studio):
        assert credits.reserve_for_job(job=_job()) is None


def test_out_of_credits_refuses_without_queuing(billing_settings: Any, tenant_a: Tenant, tiny_engine: Any) -> None:
    double = ready_double(tenant_a, tiny_engine)
    with tenant_context(tenant_a.studio):
        with pytest.raises(doubles.DoubleError) as refused:
            start_test_render_job(double, {"prompt": "photo of {subject}", "images": 2})
        assert refused.value.status == 402 and "/billing/" in refused.value.message
        assert not Job.objects.exists() and not CreditEntry.objects.exists()


def test_a_studio_with_no_credits_cannot_start_a_render_and_is_told_why(
    billing_settings: Any, client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: Any, run_settings: Any
) -> None:
    tenant_a, tenant_b = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    template, _ = make_template(tenant_a, "Business", images_per_run=2)
    with tenant_context(tenant_b.studio):
        _give(1000)  # another studio's credits don't count
    client.force_login(tenant_a.owner)
    form = {f"include_{template.pk}": "on", f"count_{template.pk}": "2", "action": "start"}
    page = client.post(f"{tenant_a.prefix}/runs/new/{double.pk}/", form)
    assert page.status_code == 402
    text = page.content.decode()
    assert "out of GPU credits" in text and f'<a href="{tenant_a.prefix}/billing/">' in text  # a link to upgrade

    api = client.post(
        f"{tenant_a.prefix}/api/runs/",
        {"double": double.pk, "items": [{"template": template.pk, "count": 2}]},
        content_type="application/json",
    )
    assert api.status_code == 402 and "out of GPU credits" in api.content.decode()
    assert f"{tenant_a.prefix}/billing/" in api.content.decode()
    with tenant_context(tenant_a.studio):
        assert not RenderRun.objects.exists() and not Job.objects.exists()

    # With credits, it starts and reserves 2 images × 1 credit; the runner settles on what it rendered.
    with tenant_context(tenant_a.studio):
        _give(3)
    response = client.post(f"{tenant_a.prefix}/runs/new/{double.pk}/", form)
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        run = RenderRun.objects.get()
        assert credits.balance() == 1
        # A running job finishes even when the credits are gone meanwhile.
        CreditEntry.objects.create(kind=Kind.ADJUSTMENT, amount=-1, reference="spent elsewhere")
    assert run_jobs(tenant_a, run) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        job = run.items.get().job
        assert job.state == Job.State.SUCCEEDED
        settle = CreditEntry.objects.get(job=job, kind=Kind.SETTLE)
        assert settle.amount == 0 and settle.reference == "used:2"
        assert credits.balance() == 0
        # More like me on a portrait: refused now, with a 402 and the link.
        from generation.models import Portrait

        portrait = Portrait.objects.filter(job=job).first()
        assert portrait is not None
        with pytest.raises(runs.RunError) as refused:
            portraits.reroll(portrait=portrait)
        assert refused.value.status == 402


def test_failed_and_cancelled_jobs_release(billing_settings: Any, tenant_a: Tenant, tiny_engine: Any) -> None:
    from jobs.tasks import run_job

    double = ready_double(tenant_a, tiny_engine)
    with tenant_context(tenant_a.studio):
        _give(10)
        job = start_test_render_job(double, {"prompt": "photo of {subject}", "images": 3})
        assert credits.balance() == 7
        cancel_job(job=job)
        assert credits.balance() == 10
        assert CreditEntry.objects.get(job=job, kind=Kind.RELEASE).amount == 3

        job2 = start_test_render_job(double, {"prompt": "photo of {subject}", "images": 2})
        double.status = double.Status.FAILED
        double.save(update_fields=["status"])  # the worker will refuse it: "not trained"
    assert run_job(job2.pk, tenant_a.studio.pk) == "failed"
    with tenant_context(tenant_a.studio):
        assert credits.balance() == 10
        assert CreditEntry.objects.get(job=job2, kind=Kind.RELEASE).amount == 2


def test_the_sweeper_releases_jobs_it_fails(billing_settings: Any, tenant_a: Tenant, tiny_engine: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from jobs.tasks import sweep_stale_jobs

    double = ready_double(tenant_a, tiny_engine)
    with tenant_context(tenant_a.studio):
        _give(5)
        job = start_test_render_job(double, {"prompt": "photo of {subject}", "images": 1})
        old = timezone.now() - timedelta(hours=1)
        Job.objects.filter(pk=job.pk).update(
            state=Job.State.RUNNING, attempts=job.max_attempts, heartbeat_at=old, updated_at=old
        )
    assert sweep_stale_jobs()["failed"] == 1
    with tenant_context(tenant_a.studio):
        assert credits.balance() == 5


def test_overage_is_billed_once_when_a_plan_allows_it(billing_settings: Any, tenant_a: Tenant) -> None:
    from billing.models import StudioBilling

    with tenant_context(tenant_a.studio):
        StudioBilling.objects.create(plan="studio", subscription_status="active")
        _give(2)
        job = _job(seeds=5)
        credits.reserve_for_job(job=job)  # 2 credits + 500 allowed over the plan
        assert credits.balance() == -3
        job.state, job.result = Job.State.SUCCEEDED, {"images": 5}
        credits.job_finished(job)
        credits.job_finished(job)
        overage = CreditEntry.objects.get(kind=Kind.OVERAGE)
        assert overage.amount == 3 and overage.reference == f"job:{job.pk}"
        assert credits.balance() == 0


def test_a_new_gpu_kind_is_billed_by_construction(billing_settings: Any, tenant_a: Tenant) -> None:
    """Issue 14: a GPU kind that exists only in this test, enqueued the ordinary way (jobs.services.enqueue_job,
    no billing call anywhere), reserves its declared cost, is refused with nothing queued when credits run out,
    and settles on the units its result says it used."""
    from jobs.registry import Charge, JobContext, job_handler, unregister
    from jobs.services import enqueue_job

    @job_handler(
        "test.upscale",
        cluster="gpu",
        cost=lambda payload: Charge(item="render_image_sd15", units=int(payload["images"])),
        units_used=lambda result: result.get("done"),
    )
    def upscale(ctx: JobContext) -> dict:
        return {"done": 1}

    try:
        with tenant_context(tenant_a.studio):
            _give(3)
            job = enqueue_job(kind="test.upscale", payload={"images": 2})
            reservation = CreditEntry.objects.get(job=job, kind=Kind.RESERVE)
            assert reservation.amount == -2 and credits.balance() == 1
            with pytest.raises(credits.OutOfCredits):
                enqueue_job(kind="test.upscale", payload={"images": 5})
            assert Job.objects.filter(kind="test.upscale").count() == 1  # the refused one was never queued
            job.state, job.result = Job.State.SUCCEEDED, {"done": 1}
            from jobs.services import job_ended

            job_ended(job)  # the job_finished signal: billing settles on the one unit used
            assert credits.balance() == 2
    finally:
        unregister("test.upscale")


def test_a_gpu_kind_without_a_cost_is_refused_at_registration() -> None:
    from jobs.registry import get_kind, job_handler

    with pytest.raises(ValueError, match="declares no cost"):

        @job_handler("test.unbilled", cluster="gpu")
        def unbilled(ctx: Any) -> None:
            return None

    with pytest.raises(LookupError):
        get_kind("test.unbilled")
