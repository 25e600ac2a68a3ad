"""Generated portraits are checked for explicit content before anyone sees them (issue 13, finding 8): every image a
render job makes passes the output check (generation.jobs.screen_outputs) before it is scored or stored;
an explicit one is withheld (no Portrait, no file), the job's result and the run/double pages say so, and it is
billed like the others (it was rendered).

The real engine renders (tiny model, CPU, 2 steps, 64 px). The real detector never fires on the tiny model's
noise, so the tests that need an explicit image name a checker that flags (ENGINE_OUTPUT_CHECK, a dotted path to
a function of this module); one test proves that the real default check (engine.safety.check_safety)
is what runs on every output."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.storage import default_storage

from billing import credits
from billing.models import CreditEntry
from engine.safety import SafetyFinding, SafetyReport
from generation import portraits, runs
from generation.jobs import OUTPUT_CHECK_FAILED
from generation.models import Portrait, RenderRun
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    job_of,
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    start_test_render_job,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]

HERE = __name__


@dataclass
class _Checker:
    """What the flagging checkers saw: one entry per call (the image's size), and which calls (1-based) flag."""

    flag: set[int] = field(default_factory=set)
    flag_all: bool = False
    sizes: list[tuple[int, int]] = field(default_factory=list)


CHECKER = _Checker()


def flagging_check(image: Any) -> SafetyReport:
    """A checker for ENGINE_OUTPUT_CHECK: flags the calls listed in CHECKER.flag (or every call)."""
    CHECKER.sizes.append(image.size)
    if CHECKER.flag_all or len(CHECKER.sizes) in CHECKER.flag:
        return SafetyReport(findings=(SafetyFinding("FEMALE_BREAST_EXPOSED", 0.91, (0, 0, 8, 8)),), code="explicit")
    return SafetyReport(findings=())


def broken_check(image: Any) -> SafetyReport:
    raise RuntimeError("the detector's model could not be loaded")


@pytest.fixture(autouse=True)
def _fresh_checker() -> Iterator[None]:
    CHECKER.flag, CHECKER.flag_all, CHECKER.sizes = set(), False, []
    yield
    CHECKER.flag, CHECKER.flag_all, CHECKER.sizes = set(), False, []


def _portrait_files() -> list[str]:
    folders, files = default_storage.listdir("portraits") if default_storage.exists("portraits") else ([], [])
    names = list(files)
    for folder in folders:
        names += [f"{folder}/{name}" for name in default_storage.listdir(f"portraits/{folder}")[1]]
    return names


def test_an_explicit_image_of_a_run_is_withheld_billed_and_the_run_page_says_so(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Issue 13, finding 8: a run item whose second image the check flags stores the other two (ranked, picked,
    with their files) and nothing of the flagged one; its job's result counts it (withheld 1, images 3: billed
    like the others), the run page and the API say "1 image was withheld: it looked explicit"."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    settings.ENGINE_OUTPUT_CHECK = f"{HERE}.flagging_check"
    settings.BILLING_ENFORCE_CREDITS = True
    CHECKER.flag = {2}
    double = ready_double(tenant_a, tiny_engine)
    template, _ = make_template(tenant_a, "Business headshot", images_per_run=3)
    with tenant_context(studio):
        credits.grant(amount=10, reference="in_test_output_safety")
        run = runs.start_run(double=double, items=[(template, 3)], user=tenant_a.owner)
        item = run.items.get()

    assert run_jobs(tenant_a, run) == ["succeeded"]
    # Every image checked, once, as delivered: the templates ask for print size (3000 px), capped on the demo model.
    assert CHECKER.sizes == [(512, 512)] * 3
    job = job_of(tenant_a, item.job_id)
    with tenant_context(studio):
        portraits = list(Portrait.objects.filter(item=item).order_by("rank"))
        assert runs.get_run(renderrun_id=run.pk).status == RenderRun.Status.DONE
        settle = CreditEntry.objects.get(job=job, kind=CreditEntry.Kind.SETTLE)
    assert len(portraits) == 2 and [p.rank for p in portraits] == [1, 2]
    assert sorted(p.seed for p in portraits) == sorted([item.seeds[0], item.seeds[2]])  # not the second seed
    assert len(_portrait_files()) == 2 * 3  # image, thumbnail and preview of the two kept; nothing of the other
    assert job.result["withheld"] == 1 and job.result["images"] == 3 and len(job.result["portraits"]) == 2
    assert job.result["withheld_message"] == "1 image was withheld: it looked explicit."
    assert job.result["safety"]["checked"] == 3 and job.result["safety"]["withheld"] == 1
    assert job.progress_message == "2 portraits ready · 1 image was withheld: it looked explicit."
    assert settle.reference == "used:3"  # rendered, so billed like the others

    client.force_login(tenant_a.owner)
    html = client.get(f"{tenant_a.prefix}/runs/{run.pk}/").content.decode()
    assert (
        f'id="item-{item.pk}-withheld" data-withheld="1">1 image was withheld: it looked explicit. '
        '<span class="withheld-reasons small">The detector found: exposed female breast 0.91.</span></p>'
    ) in html  # staff see why (the detector's label and score; the pixels are gone)
    assert job.result["safety"]["reasons"] == [{"seed": item.seeds[1], "findings": [["FEMALE_BREAST_EXPOSED", 0.91]]}]
    assert html.count('class="photo portrait"') == 2
    api = client.get(f"{tenant_a.prefix}/api/runs/{run.pk}/").json()
    assert api["items"][0]["job"]["result"]["withheld"] == 1


def test_withheld_test_renders_and_re_rolls_leave_no_portrait_and_the_pages_say_so(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Issue 13, finding 8: the other render job ("portraits.render": a double's test render, a re-roll or
    "more like me" of a run's portrait) withholds what the check flags: a test render of two explicit images
    stores no portrait and the double's page says "2 images were withheld: they looked explicit"; a re-roll
    whose image is flagged adds nothing to its run item, whose block says so."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    settings.ENGINE_OUTPUT_CHECK = f"{HERE}.flagging_check"
    double = ready_double(tenant_a, tiny_engine)
    client.force_login(tenant_a.owner)

    CHECKER.flag_all = True
    config = {"prompt": "studio portrait of {subject}", "images": 2, "seed": 7, "steps": 2, "scheduler": "euler_a"}
    with tenant_context(studio):
        job = start_test_render_job(double, config, tenant_a.owner)
    assert run_job(job.pk, studio.pk) == "succeeded"
    job = job_of(tenant_a, job.pk)
    with tenant_context(studio):
        assert not Portrait.objects.filter(double=double).exists()
    assert len(CHECKER.sizes) == 2 and _portrait_files() == []
    assert (job.result["withheld"], job.result["images"], job.result["portraits"]) == (2, 2, [])
    html = client.get(f"{tenant_a.prefix}/doubles/{double.pk}/").content.decode()
    assert 'id="render-withheld" data-withheld="2">2 images were withheld: they looked explicit.</p>' in html

    # A run's portrait re-rolled: the new image is flagged, so the item keeps its one portrait and says why.
    CHECKER.flag_all, CHECKER.sizes = False, []
    template, _ = make_template(tenant_a, "Vintage", images_per_run=1)
    with tenant_context(studio):
        run = runs.start_run(double=double, items=[(template, 1)], user=tenant_a.owner)
        item = run.items.get()
    assert run_jobs(tenant_a, run) == ["succeeded"]
    with tenant_context(studio):
        portrait = Portrait.objects.get(item=item)
        reroll = portraits.reroll(portrait=portrait, user=tenant_a.owner)
    CHECKER.flag_all = True
    assert run_job(reroll.pk, studio.pk) == "succeeded"
    assert job_of(tenant_a, reroll.pk).result["withheld"] == 1
    with tenant_context(studio):
        assert list(Portrait.objects.filter(item=item)) == [portrait]
    html = client.get(f"{tenant_a.prefix}/runs/{run.pk}/").content.decode()
    assert (
        f'id="item-{item.pk}-withheld" data-withheld="1">1 image was withheld: it looked explicit. '
        '<span class="withheld-reasons small">The detector found: exposed female breast 0.91.</span></p>'
    ) in html  # staff see why (the detector's label and score; the pixels are gone)
    assert job_of(tenant_a, reroll.pk).result["safety"]["reasons"] == [
        {"seed": reroll.payload["seed"], "findings": [["FEMALE_BREAST_EXPOSED", 0.91]]}
    ]
    assert html.count('class="photo portrait"') == 1


def test_safe_images_are_stored_as_before_and_the_real_check_sees_every_one(
    monkeypatch: pytest.MonkeyPatch, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Issue 13, finding 8: without ENGINE_OUTPUT_CHECK the real check (engine.safety.check_safety,
    nudenet on the CPU) runs on every output of both render jobs, once each, and safe images are stored as
    before, with no withheld message."""
    from engine import safety

    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    settings.ENGINE_OUTPUT_CHECK = None
    real = safety.check_safety
    seen: list[tuple[int, int]] = []
    reports: list[Any] = []

    def spy(image: Any, **kwargs: Any) -> Any:
        seen.append(image.size)
        reports.append(real(image, **kwargs))
        return reports[-1]

    monkeypatch.setattr(safety, "check_safety", spy)
    double = ready_double(tenant_a, tiny_engine)
    first, _ = make_template(tenant_a, "Business headshot", images_per_run=3)
    second, _ = make_template(tenant_a, "Vintage", images_per_run=2)
    with tenant_context(studio):
        run = runs.start_run(double=double, items=[(first, 3), (second, 2)], user=tenant_a.owner)
        render = start_test_render_job(double, {"prompt": "a {subject}", "images": 2, "steps": 2})
    assert run_jobs(tenant_a, run) == ["succeeded", "succeeded"]
    assert run_job(render.pk, studio.pk) == "succeeded"

    # 3 + 2 run images at their print size (capped on the demo model) and 2 test-render images at their render
    # size (a test render delivers no print size), each checked once.
    assert seen == [(512, 512)] * 5 + [(64, 64)] * 2
    assert all(isinstance(report, safety.SafetyReport) and report.ok for report in reports)
    with tenant_context(studio):
        assert Portrait.objects.filter(run=run).count() == 5
        assert Portrait.objects.filter(job=render).count() == 2
        jobs = list(Job.objects.filter(pk__in=[*run.items.values_list("job_id", flat=True), render.pk]))
    for job in jobs:
        assert job.result["withheld"] == 0 and "withheld_message" not in job.result
        assert job.result["safety"]["checked"] == job.result["images"]
        assert "withheld" not in job.progress_message


def test_a_check_that_fails_stores_nothing_and_says_why(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Issue 13, finding 8: when the check itself fails (its model can't load, a wrong ENGINE_OUTPUT_CHECK), the
    job fails with a message for people and no image is stored unchecked."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    double = ready_double(tenant_a, tiny_engine)
    template, _ = make_template(tenant_a, "Business headshot", images_per_run=1)
    for path in (f"{HERE}.broken_check", f"{HERE}.no_such_check"):
        settings.ENGINE_OUTPUT_CHECK = path
        with tenant_context(studio):
            run = runs.start_run(double=double, items=[(template, 1)], user=tenant_a.owner)
        assert run_jobs(tenant_a, run) == ["failed"]
        with tenant_context(studio):
            job = run.items.get().job
            assert not Portrait.objects.filter(run=run).exists()
        assert job.error == OUTPUT_CHECK_FAILED
    assert _portrait_files() == []
