"""Render runs on PostgreSQL with the real engine (tiny model, CPU, 2 steps, 64 px): grouping and estimates,
the refusals, a run end to end through the job runner (portraits with thumbnails, watermarked previews, recipes,
ranks, picks), versioning, "more like me" and re-roll, a failing template that fails alone and its retry, the
designer's preview, and the pages."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from generation import doubles, portraits, runs
from generation.doubles import RUN_ITEM_KIND
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from jobs.services import queue_name
from jobs.tasks import run_job
from templates_app.models import Template, TemplateVersion
from tenants.context import tenant_context
from tests.conftest import Tenant, add_member
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    SECOND_TINY,
    job_of,
    make_template,
    new_version,
    ready_double,
    reload,
    run_jobs,
    run_settings_fixture,
    style_lora,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


# --- pure helpers ---------------------------------------------------------------------------------------------


def test_the_django_side_flag_order_matches_the_engine() -> None:
    from engine.likeness import FLAG_SEVERITY

    assert portraits.FLAG_SEVERITY == FLAG_SEVERITY


def test_group_order_keeps_first_appearance_and_original_order() -> None:
    assert runs.group_order(["a", "b", "a", "c", "b"]) == [0, 2, 1, 4, 3]
    assert runs.group_order([]) == []


def test_picks_skip_flagged_portraits_while_clean_ones_remain() -> None:
    order = [3, 0, 1, 2]
    assert portraits.choose_picks(order, [True, False, True, False], 2) == {3, 1}
    assert portraits.choose_picks(order, [True, True, True, False], 2) == {3, 0}  # filled with the best flagged one
    assert portraits.choose_picks(order, [False] * 4, 0) == set()


def test_seeds_are_distinct_and_in_range() -> None:
    seeds = runs.draw_seeds(32)
    assert len(set(seeds)) == 32 and all(0 <= s < 2**32 for s in seeds)


# --- estimates ------------------------------------------------------------------------------------------------


def test_estimate_uses_the_per_family_table_and_one_load_per_base_model(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.05}
    settings.ENGINE_DEMO_RENDER_STEPS = 50  # no cap on the demo model's steps here (see the test below)
    double = ready_double(tenant_a, tiny_engine)
    _, v1 = make_template(tenant_a, "Business", steps=10, face_pass=False, long_side=0)
    _, v2 = make_template(
        tenant_a, "Vintage", steps=20, base_model=SECOND_TINY, width=32, height=64, face_pass=False, long_side=0
    )
    _, v3 = make_template(
        tenant_a, "Wedding", steps=10, reference_mode="img2img", strength=0.5, face_pass=False, long_side=0
    )
    with tenant_context(tenant_a.studio):
        TemplateVersion.objects.filter(pk=v3.pk).update(reference_image="templates/x/ref.png")
        v3.refresh_from_db()
        plan = runs.estimate(double=double, items=[(v1, 4), (v2, 2), (v3, 1)])
        # tiny: 0.05 s per image-step at 64 px; v2 is half the pixels; img2img at 0.5 runs half the steps.
        assert [item.seconds for item in plan.items] == [4 * 10 * 0.05, 2 * 20 * 0.05 * 0.5, 1 * 5 * 0.05]
        assert plan.model_loads == {"tiny-sd15": 1.0, SECOND_TINY: 1.0}
        assert plan.images == 7 and plan.gpu_seconds == pytest.approx(2.0 + 1.0 + 0.25 + 2.0)
        assert plan.label == "about 6 s"
        # The table comes from settings, read at call time.
        settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.5}
        settings.ENGINE_MODEL_LOAD_SECONDS = {"tiny": 30}
        plan = runs.estimate(double=double, items=[(v1, 4)])
        assert plan.gpu_seconds == pytest.approx(4 * 10 * 0.5 + 30)
        assert plan.label == "about 50 s"


def test_the_demo_model_renders_at_most_its_own_steps_and_estimates_say_so(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.1}
    settings.ENGINE_DEMO_RENDER_STEPS = 10
    double = ready_double(tenant_a, tiny_engine)
    _, v1 = make_template(tenant_a, "Business", steps=30, face_pass=False, long_side=0)
    with tenant_context(tenant_a.studio):
        plan = runs.estimate(double=double, items=[(v1, 4)])
    assert plan.items[0].steps == 10
    assert plan.items[0].seconds == pytest.approx(4 * 10 * 0.1)


def test_estimates_use_what_the_workers_really_took(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Once run items have finished, the median of their measured seconds per image-step replaces the table (per
    studio: another studio's figures are not seen)."""
    tenant_a, tenant_b = two_tenants
    settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.05}
    settings.ENGINE_DEMO_RENDER_STEPS = 10
    double = ready_double(tenant_a, tiny_engine)
    _, v1 = make_template(tenant_a, "Business", steps=10, face_pass=False, long_side=0)

    def finished(tenant: Tenant, rate: float, key: str = "tiny") -> None:
        with tenant_context(tenant.studio):
            Job.objects.create(
                kind=RUN_ITEM_KIND,
                cluster="gpu",
                state=Job.State.SUCCEEDED,
                finished_at=timezone.now(),
                result={"timing": {"cost_key": key, "seconds": 9.0, "seconds_per_step": rate}},
            )

    finished(tenant_b, 5.0)  # another studio's: never used
    finished(tenant_a, 1.0, key="sd15")  # another kind of model
    with tenant_context(tenant_a.studio):
        assert runs.estimate(double=double, items=[(v1, 4)]).items[0].seconds == pytest.approx(4 * 10 * 0.05)
    for rate in (0.2, 0.3, 0.4):
        finished(tenant_a, rate)
    with tenant_context(tenant_a.studio):
        assert runs.measured_seconds_per_step("tiny") == pytest.approx(0.3)
        assert runs.estimate(double=double, items=[(v1, 4)]).items[0].seconds == pytest.approx(4 * 10 * 0.3)


def test_estimate_of_real_sizes_matches_the_documented_figures(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """SD 1.5 at 512 px: 4 images × 30 steps × 0.013 s + an 8 s load; SDXL at 1024 px: × 0.048 + 20 s (the base
    render alone); then the finishing stages' work on top."""
    tenant_a, _ = two_tenants
    settings.ENGINE_BASE_MODELS = [
        {"name": "sd15", "family": "sd15", "source": "/models/sd15"},
        {"name": "sdxl", "family": "sdxl", "source": "/models/sdxl"},
    ]
    double = ready_double(tenant_a, tiny_engine)
    with tenant_context(tenant_a.studio):
        double.base_model, double.is_demo = "sd15", False
        _, sd15 = make_template(
            tenant_a, "SD", base_model="sd15", steps=30, width=None, height=None, face_pass=False, long_side=0
        )
        plan = runs.estimate(double=double, items=[(sd15, 4)])
        assert plan.gpu_seconds == pytest.approx(4 * 30 * 0.013 + 8.0)
        # On a GPU a partial batch (batch size 4) takes as long as a full one.
        assert runs.estimate(double=double, items=[(sd15, 1)]).gpu_seconds == pytest.approx(4 * 30 * 0.013 + 8.0)
        assert runs.estimate(double=double, items=[(sd15, 5)]).gpu_seconds == pytest.approx(8 * 30 * 0.013 + 8.0)
        double.family = "sdxl"
        _, xl = make_template(
            tenant_a, "XL", base_model="sdxl", steps=30, width=None, height=None, face_pass=False, long_side=0
        )
        plan = runs.estimate(double=double, items=[(xl, 4)])
        assert plan.gpu_seconds == pytest.approx(4 * 30 * 0.048 + 20.0)

        # The finishing stages add their work per image: the face pass (one face, int(30 x 0.4) = 12 steps at the
        # native size) and the upscale to 3000 px (7 x 7 = 49 tiles of 512 px overlapping by 64, int(30 x 0.25) = 7
        # steps each).
        double.family = "sd15"
        _, finished = make_template(
            tenant_a, "Print", base_model="sd15", steps=30, width=None, height=None, face_pass=True, long_side=3000
        )
        plan = runs.estimate(double=double, items=[(finished, 4)])
        assert plan.gpu_seconds == pytest.approx((4 * 30 + 4 * (12 + 49 * 7)) * 0.013 + 8.0)


# --- starting runs: grouping and refusals ---------------------------------------------------------------------


def test_jobs_are_enqueued_grouped_by_base_model(
    two_tenants: tuple[Tenant, Tenant],
    tiny_engine: dict[str, Any],
    enqueued: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    tenant_a, _ = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    a, _ = make_template(tenant_a, "A (tiny)")
    b, _ = make_template(tenant_a, "B (second)", base_model=SECOND_TINY)
    c, _ = make_template(tenant_a, "C (tiny)")
    d, _ = make_template(tenant_a, "D (second)", base_model=SECOND_TINY)
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        run = runs.start_run(double=double, items=[(a, 2), (b, 1), (c, 3), (d, 2)], user=tenant_a.owner)
    with tenant_context(tenant_a.studio):
        items = list(RenderRunItem.objects.filter(run=run).select_related("template_version__template", "job"))
        by_position = sorted(items, key=lambda item: item.position)
        assert [item.template_version.template.name for item in by_position] == [
            "A (tiny)",
            "C (tiny)",
            "B (second)",
            "D (second)",
        ]
        # The broker gets the jobs in that order: same base model back to back.
        assert enqueued.job_ids == [item.job_id for item in by_position]
        assert [call[1]["cluster"] for call in enqueued.calls] == [queue_name("gpu")] * 4
        for item in items:
            assert item.job.kind == "runs.render_item" and item.job.cluster == "gpu"
            assert item.job.payload == {"item_id": item.pk, "run_id": run.pk, "double_id": double.pk}
            assert len(item.seeds) == item.images == len(set(item.seeds))
        assert [item.images for item in by_position] == [2, 3, 1, 2]
        assert run.kind == RenderRun.Kind.CLIENT and run.images == 8 and run.gpu_seconds > 0
        assert run.status == RenderRun.Status.QUEUED


def test_start_run_refusals_create_nothing(two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]) -> None:
    from generation.models import DigitalDouble

    tenant_a, _ = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    published, _ = make_template(tenant_a, "Published")
    draft, _ = make_template(tenant_a, "Draft", published=False)
    with tenant_context(tenant_a.studio):
        cases: list[tuple[Any, int, str]] = [
            ([(draft, 2)], 409, "not published"),
            ([], 400, "at least one template"),
            ([(published, 0)], 400, "between 1 and 32"),
            ([(published, 33)], 400, "between 1 and 32"),
            ([(published, "three")], 400, "whole number"),
            ([(published, 2.5)], 400, "whole number"),
            ([(published, 2), (published, 3)], 400, "listed twice"),
        ]
        for items, status, text in cases:
            with pytest.raises(runs.RunError) as refused:
                runs.start_run(double=double, items=items, user=tenant_a.owner)
            assert (refused.value.status, text in refused.value.message) == (status, True), refused.value.message
        archived, _ = make_template(tenant_a, "Archived")
        Template.objects.filter(pk=archived.pk).update(status=Template.Status.ARCHIVED)
        archived.refresh_from_db()
        with pytest.raises(runs.RunError, match="not published"):
            runs.start_run(double=double, items=[(archived, 1)])
        # A double that is not trained yet.
        DigitalDouble.objects.filter(pk=double.pk).update(status=DigitalDouble.Status.TRAINING)
        double.refresh_from_db()
        with pytest.raises(runs.RunError) as refused:
            runs.start_run(double=double, items=[(published, 2)])
        assert refused.value.status == 409 and "not trained" in refused.value.message
        assert not RenderRun.objects.exists() and not Job.objects.filter(kind="runs.render_item").exists()


def test_a_template_of_another_base_model_family_is_refused(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_BASE_MODELS = [{"name": "sdxl", "family": "sdxl", "source": "/models/sdxl", "label": "SDXL 1.0"}]
    double = ready_double(tenant_a, tiny_engine)
    fits, _ = make_template(tenant_a, "Fits")
    other, _ = make_template(tenant_a, "Big", base_model="sdxl", width=None, height=None)
    unknown, _ = make_template(tenant_a, "Gone", base_model="no-such-model")
    with tenant_context(tenant_a.studio):
        with pytest.raises(runs.RunError) as refused:
            runs.start_run(double=double, items=[(fits, 2), (other, 2)])
        assert refused.value.status == 400
        assert "“Big” renders with SDXL 1.0" in refused.value.message and "trained for" in refused.value.message
        with pytest.raises(runs.RunError, match="no base model called"):
            runs.start_run(double=double, items=[(unknown, 1)])
        settings.ENGINE_CONTROLNETS = {}
        _, pose = make_template(tenant_a, "Pose", reference_mode="pose")
        TemplateVersion.objects.filter(pk=pose.pk).update(reference_image="templates/x/pose.png")
        pose_template = Template.objects.get(pk=pose.template_id)
        with pytest.raises(runs.RunError) as refused:
            runs.start_run(double=double, items=[(pose_template, 1)])
        assert refused.value.status == 409 and "ControlNet 'pose'" in refused.value.message
        assert not RenderRun.objects.exists()


# --- a run end to end -----------------------------------------------------------------------------------------


def _png(name: str) -> Image.Image:
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@dataclass
class FinishedRun:
    double: DigitalDouble
    lora: Any
    business: Template
    v1: Any
    run: RenderRun
    items: dict[str, Any]
    portraits: list[Portrait]
    styled: list[Portrait]


def _templates(tenant: Tenant, tiny_engine: dict[str, Any]) -> tuple[Any, Template, Any, Template]:
    lora = style_lora(tenant, tiny_engine["style"])
    business, v1 = make_template(tenant, "Business headshot", images_per_run=3, style_lora=lora, style_weight=0.7)
    vintage, _ = make_template(tenant, "Vintage", images_per_run=2)
    return lora, business, v1, vintage


def _finished_run(tenant: Tenant, tiny_engine: dict[str, Any], settings: Any) -> FinishedRun:
    """A client run of two templates (3 and 2 images, the first with a style LoRA), its real jobs run."""
    settings.RENDER_PICKS_PER_TEMPLATE = 2
    double = ready_double(tenant, tiny_engine, name="Ada Client")
    lora, business, v1, vintage = _templates(tenant, tiny_engine)
    with tenant_context(tenant.studio):
        run = runs.start_run(double=double, items=[(business, 3), (vintage, 2)], user=tenant.owner)
    assert run_jobs(tenant, run) == ["succeeded", "succeeded"]
    with tenant_context(tenant.studio):
        run = runs.get_run(renderrun_id=run.pk)
        assert run.status == RenderRun.Status.DONE
        items = {item.template_version.template.name: item for item in run.items.all()}
        portraits = list(
            Portrait.objects.filter(run=run)
            .select_related("template_version__template")
            .order_by("item__position", "rank")
        )
    styled = [p for p in portraits if p.item_id == items["Business headshot"].pk]
    return FinishedRun(double, lora, business, v1, run, items, portraits, styled)


def test_staff_start_a_run_from_the_double_page_after_its_estimate(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """The double's page links to a new run; the new-run page lists the published templates with their counts,
    estimates the work (htmx and the Review step), refuses a bad count, and starts one item and one gpu job per
    template."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    double = ready_double(tenant_a, tiny_engine, name="Ada Client")
    _, business, _, vintage = _templates(tenant_a, tiny_engine)
    make_template(tenant_a, "Unpublished draft", published=False)
    staff = add_member(tenant_a, "staff@studio-a.example", "staff")
    client.force_login(staff)
    prefix = tenant_a.prefix

    # The double's page links to the new run; the new-run page lists published templates with their counts.
    page = client.get(f"{prefix}/doubles/{double.pk}/").content.decode()
    assert f"/runs/new/{double.pk}/" in page and "Run templates" in page
    page = client.get(f"{prefix}/runs/new/{double.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Business headshot" in html and "Vintage" in html
    assert "Unpublished draft" not in html
    assert f'name="count_{business.pk}" id="count_{business.pk}" value="3"' in html

    # The estimate, before starting (htmx fragment, and the Review step).
    form = {f"include_{business.pk}": "1", f"count_{business.pk}": "3", f"include_{vintage.pk}": "1"}
    form[f"count_{vintage.pk}"] = "2"
    fragment = client.post(f"{prefix}/runs/new/{double.pk}/estimate/", form, headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert fragment.status_code == 200 and 'id="estimate-images">5<' in text and "Expected GPU time" in text
    assert "<html" not in text
    review = client.post(f"{prefix}/runs/new/{double.pk}/", {**form, "action": "review"}).content.decode()
    assert 'id="estimate-images">5<' in review
    bad = client.post(f"{prefix}/runs/new/{double.pk}/", {**form, f"count_{vintage.pk}": "40", "action": "start"})
    assert bad.status_code == 400 and "between 1 and 32" in bad.content.decode()

    # Start: one item and one gpu job per template.
    response = client.post(f"{prefix}/runs/new/{double.pk}/", {**form, "action": "start"})
    assert response.status_code == 302
    with tenant_context(studio):
        run = RenderRun.objects.get()
    assert response["Location"].endswith(f"/runs/{run.pk}/")
    page = client.get(f"{prefix}/runs/{run.pk}/").content.decode()
    assert "Business headshot" in page and 'role="progressbar"' in page and "hx-trigger" in page
    with tenant_context(studio):
        kinds = [(item.job.kind, item.job.cluster) for item in run.items.select_related("job")]
    assert kinds == [("runs.render_item", "gpu")] * 2


def test_a_runs_jobs_store_ranked_picked_watermarked_portraits_with_their_recipes(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """The real jobs on the tiny model: each item's portraits ranked with the seeds drawn at the start, the best K
    picked, the recipe with its template version and style LoRA, three clean files each, a real watermark; the
    run page and the run list show them."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    done = _finished_run(tenant_a, tiny_engine, settings)
    double, lora, run, items, portraits, styled = (
        done.double,
        done.lora,
        done.run,
        done.items,
        done.portraits,
        done.styled,
    )
    client.force_login(add_member(tenant_a, "staff@studio-a.example", "staff"))
    prefix = tenant_a.prefix

    assert len(portraits) == 5
    for name, count in (("Business headshot", 3), ("Vintage", 2)):
        item = items[name]
        mine = [p for p in portraits if p.item_id == item.pk]
        assert sorted(p.rank for p in mine) == list(range(1, count + 1))
        assert sorted(p.seed for p in mine) == sorted(item.seeds)  # the seeds drawn when the run started
        assert sum(p.is_pick for p in mine) == 2  # the best K (RENDER_PICKS_PER_TEMPLATE)
        assert {p.rank for p in mine if p.is_pick} == {1, 2}
        job = job_of(tenant_a, item.job_id)
        assert job.progress == 100 and job.result["item_id"] == item.pk and len(job.result["picks"]) == 2
    for p in portraits:
        version = p.template_version
        assert p.run_id == run.pk and p.double_id == double.pk and p.is_demo and not p.is_hidden
        assert p.recipe["template_version"] == {
            "id": version.pk,
            "number": 1,
            "template_id": version.template_id,
            "name": version.template.name,
        }
        assert p.recipe["prompt_template"] == "studio portrait of {subject}, soft light"
        assert p.recipe["steps"] == 2 and p.recipe["width"] == 64 and p.identity_weight == pytest.approx(0.9)
        assert isinstance(p.flags, list) and (p.likeness is None or 0 <= p.likeness <= 100)
        # Files: full-resolution PNG without metadata, a WebP thumbnail, a JPEG preview; paths name no one.
        for field in (p.image, p.thumbnail, p.preview):
            assert re.fullmatch(rf"portraits/{studio.pk}/[0-9a-f]{{32}}\.\w+", field.name), field.name
        full = _png(p.image.name)
        # The template's print size (3000 px by default), capped on the demo model (ENGINE_DEMO_MAX_LONG_SIDE).
        assert full.format == "PNG" and full.size == (512, 512) and not full.info.get("exif")
        assert _png(p.thumbnail.name).format == "WEBP"
        preview = _png(p.preview.name)
        assert preview.format == "JPEG" and preview.size == (512, 512)  # at most 1024 px
    for p in styled:
        style = next(a for a in p.recipe["adapters"] if a["name"] == "style")
        assert style == {
            "name": "style",
            "label": "Film look",
            "source": f"style-lora:{lora.pk}",
            "sha256": lora.sha256,
            "weight": 0.7,
            "style_lora_id": lora.pk,
        }
    assert all(
        not any(a["name"] == "style" for a in p.recipe["adapters"])
        for p in portraits
        if p.item_id == items["Vintage"].pk
    )

    # The watermark is really drawn: the preview differs from the same image without it, encoded the same way.
    from engine.images import encode_clean

    first = portraits[0]
    plain = Image.open(io.BytesIO(encode_clean(_png(first.image.name), format="JPEG", quality=85)))
    marked = np.asarray(_png(first.preview.name).convert("RGB"), dtype=np.int16)
    difference = np.abs(marked - np.asarray(plain.convert("RGB"), dtype=np.int16)).sum(axis=2)
    assert (difference > 60).mean() > 0.05, "no watermark in the preview"

    # The run page: every template with its progress, portraits through signed links, scores, ranks, picks.
    page = client.get(f"{prefix}/runs/{run.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Done" in html and html.count('class="photo portrait"') == 5
    assert html.count("portrait-pick") == 4 and "#1" in html and "Likeness" in html
    assert "More like me" in html and "Re-roll" in html and "Hide" in html and "Unpick" in html
    for field, content_type in (("thumbnail", "image/webp"), ("preview", "image/jpeg")):
        pattern = r'<img src="([^"]*/media/[^"]+)"' if field == "thumbnail" else r'<a href="([^"]*/media/[^"]+)"'
        link = re.search(pattern, html).group(1)
        served = client.get(link)
        assert served.status_code == 200 and served["Content-Type"] == content_type
    listing = client.get(f"{prefix}/runs/").content.decode()
    assert "Ada Client" in listing and "Business headshot" in listing and "5 / 5" in listing


def test_a_new_template_version_leaves_the_runs_portraits_unchanged(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    done = _finished_run(tenant_a, tiny_engine, settings)
    portraits, styled, business, v1 = done.portraits, done.styled, done.business, done.v1

    # Versioning: a new version of the template leaves the old portraits' recipes and version unchanged.
    before = {p.pk: (p.recipe, p.template_version_id) for p in portraits}
    v2 = new_version(tenant_a, business, prompt="outdoor portrait of {subject}", identity_weight=1.2)
    with tenant_context(studio):
        after = {p.pk: (p.recipe, p.template_version_id) for p in Portrait.objects.filter(pk__in=before)}
        assert Template.objects.get(pk=business.pk).current_version_id == v2.pk
    assert after == before and {p.template_version_id for p in styled} == {v1.pk}


def test_portrait_actions_on_a_run_more_like_me_reroll_hide_pick_and_erasure(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """More like me (htmx) and re-roll are small gpu jobs whose portraits join the item; hide and pick are instant;
    deleting the double deletes every portrait's three files."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    done = _finished_run(tenant_a, tiny_engine, settings)
    double, run, styled, v1 = done.double, done.run, done.styled, done.v1
    client.force_login(add_member(tenant_a, "staff@studio-a.example", "staff"))
    prefix = tenant_a.prefix

    # More like me (htmx): the same seed and style, one step more identity weight, in the same item.
    best = styled[0]
    fragment = client.post(f"{prefix}/runs/portraits/{best.pk}/more-like-me/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and f'id="item-{best.item_id}"' in fragment.content.decode()
    assert "hx-trigger" in fragment.content.decode()  # the item polls while the small job runs
    with tenant_context(studio):
        job = Job.objects.get(kind="portraits.render", payload__more_like_me_of=best.pk)
    assert job.payload == {
        "double_id": double.pk,
        "more_like_me_of": best.pk,
        "run_id": run.pk,
        "item_id": best.item_id,
    }
    assert run_job(job.pk, studio.pk) == "succeeded"
    with tenant_context(studio):
        child = Portrait.objects.get(parent=best)
        ranks = sorted(Portrait.objects.filter(item_id=best.item_id).values_list("rank", flat=True))
    assert child.seed == best.seed and child.identity_weight > best.identity_weight
    assert child.recipe["more_like_me_step"] == 1 and child.recipe["template_version"]["number"] == 1
    assert child.item_id == best.item_id and child.run_id == run.pk and child.template_version_id == v1.pk
    assert child.thumbnail and child.preview and not child.is_pick
    assert ranks == [1, 2, 3, 4]  # the new portrait took its place in the item's ranking
    assert [a["weight"] for a in child.recipe["adapters"] if a["name"] == "style"] == [0.7]

    # Re-roll: a new seed, the same recipe otherwise.
    response = client.post(f"{prefix}/runs/portraits/{best.pk}/reroll/")
    assert response.status_code == 302
    with tenant_context(studio):
        job = Job.objects.get(kind="portraits.render", payload__reroll_of=best.pk)
    assert run_job(job.pk, studio.pk) == "succeeded"
    with tenant_context(studio):
        rerolled = Portrait.objects.get(job=job)
    assert rerolled.seed != best.seed and rerolled.seed == job.payload["seed"]
    assert rerolled.identity_weight == best.identity_weight and rerolled.parent_id == best.pk

    # Hide and pick are instant.
    client.post(f"{prefix}/runs/portraits/{best.pk}/hide/", headers={"HX-Request": "true"})
    client.post(f"{prefix}/runs/portraits/{child.pk}/pick/")
    with tenant_context(studio):
        assert Portrait.objects.get(pk=best.pk).is_hidden and not Portrait.objects.get(pk=best.pk).is_pick
        assert Portrait.objects.get(pk=child.pk).is_pick
    page = client.get(f"{prefix}/runs/{run.pk}/").content.decode()
    assert "Hidden (1)" in page and "Unhide" in page

    # Erasing the client deletes the portraits' three files each.
    with tenant_context(studio):
        names = [f.name for p in Portrait.objects.filter(double=double) for f in (p.image, p.thumbnail, p.preview)]
        assert all(default_storage.exists(n) for n in names)
        doubles.delete_double(double=reload(tenant_a, double))
        assert not RenderRun.objects.exists() and not Portrait.objects.exists()
    assert not any(default_storage.exists(n) for n in names)


def test_one_failing_template_fails_alone_and_its_retry_works(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    double = ready_double(tenant_a, tiny_engine)
    lora = style_lora(tenant_a, tiny_engine["style"], name="Lost style")
    styled, _ = make_template(tenant_a, "Styled", style_lora=lora, images_per_run=1)
    plain, _ = make_template(tenant_a, "Plain", images_per_run=1)
    with tenant_context(studio):
        run = runs.start_run(double=double, items=[(styled, 1), (plain, 1)], user=tenant_a.owner)
        items = {
            item.template_version.template.name: item for item in run.items.select_related("template_version__template")
        }
    stored = lora.file.name
    default_storage.delete(stored)  # the style LoRA's file is gone from storage

    assert run_jobs(tenant_a, run) == ["failed", "succeeded"]
    failed = job_of(tenant_a, items["Styled"].job_id)
    assert "“Lost style”" in failed.error and "missing from storage" in failed.error
    with tenant_context(studio):
        assert runs.get_run(renderrun_id=run.pk).status == RenderRun.Status.PARTLY_FAILED
        assert Portrait.objects.filter(item=items["Plain"]).count() == 1
        assert not Portrait.objects.filter(item=items["Styled"]).exists()
    client.force_login(tenant_a.owner)
    page = client.get(f"{tenant_a.prefix}/runs/{run.pk}/").content.decode()
    assert "Partly failed" in page and "missing from storage" in page and f"retry-item-{items['Styled'].pk}" in page

    # Retrying a job that did not fail is refused; after the file is back, the retry succeeds.
    refused = client.post(f"{tenant_a.prefix}/runs/{run.pk}/items/{items['Plain'].pk}/retry/")
    assert refused.status_code == 409
    default_storage.save(stored, ContentFile(tiny_engine["style"]))
    response = client.post(
        f"{tenant_a.prefix}/runs/{run.pk}/items/{items['Styled'].pk}/retry/", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "Queued again" in response.content.decode()
    assert 'id="run-status" data-status="running" hx-swap-oob="true"' in response.content.decode()
    assert job_of(tenant_a, items["Styled"].job_id).state == Job.State.QUEUED
    assert run_job(items["Styled"].job_id, studio.pk) == "succeeded"
    with tenant_context(studio):
        assert runs.get_run(renderrun_id=run.pk).status == RenderRun.Status.DONE
        first = Portrait.objects.get(item=items["Styled"])
        assert first.seed == items["Styled"].seeds[0]  # the same seed as the first attempt would have used
        # Idempotent: the job run again (an earlier attempt's portraits are replaced, files included).
        old_files = [first.image.name, first.thumbnail.name, first.preview.name]
        Job.objects.filter(pk=items["Styled"].job_id).update(state=Job.State.QUEUED, attempts=0)
    assert run_job(items["Styled"].job_id, studio.pk) == "succeeded"
    with tenant_context(studio):
        again = Portrait.objects.get(item=items["Styled"])
    assert again.pk != first.pk and again.seed == first.seed
    assert not any(default_storage.exists(name) for name in old_files)


def test_run_status_is_derived_from_the_jobs() -> None:
    from generation.models import run_status

    def jobs(*states: str) -> list[Job]:
        return [Job(state=state) for state in states]

    assert run_status(jobs("queued", "queued")) == "queued"
    assert run_status(jobs("queued", "succeeded")) == "running"
    assert run_status(jobs("running", "failed")) == "running"
    assert run_status(jobs("succeeded", "succeeded")) == "done"
    assert run_status(jobs("succeeded", "failed")) == "partly_failed"
    assert run_status(jobs("failed", "cancelled")) == "failed"
    assert run_status([None]) == "failed"


def test_more_like_me_stops_at_the_cap_and_ranks_insert(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    from tests.generation.factories import make_render_run_item

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        item = make_render_run_item(tenant_a)
        double = item.run.double
        recipe = {"recipe_version": 1, "adapters": [{"name": "identity", "weight": 1.6}], "identity_weight": 1.6}
        capped = Portrait.objects.create(double=double, run=item.run, item=item, recipe=recipe, rank=1, likeness=80)
        assert not portraits.can_go_more_like_me(capped)
        with pytest.raises(runs.RunError) as refused:
            portraits.more_like_me(portrait=capped)
        assert refused.value.status == 409
        lower = {**recipe, "adapters": [{"name": "identity", "weight": 1.0}], "identity_weight": 1.0}
        assert portraits.can_go_more_like_me(Portrait(recipe=lower))
        second = Portrait.objects.create(double=double, run=item.run, item=item, recipe=lower, rank=2, likeness=60)
        flagged = Portrait.objects.create(
            double=double, run=item.run, item=item, recipe=lower, rank=3, flags=["no_face"]
        )
        new = Portrait.objects.create(double=double, run=item.run, item=item, recipe=lower, likeness=70)
        portraits.insert_rank(portrait=new)
        ranks = dict(Portrait.objects.filter(item=item).values_list("pk", "rank"))
        assert ranks == {capped.pk: 1, new.pk: 2, second.pk: 3, flagged.pk: 4}
        # Hidden portraits can't be picks; hide/unhide/pick are instant.
        portraits.set_pick(portrait=second, pick=True)
        portraits.hide(portrait=second)
        second.refresh_from_db()
        assert second.is_hidden and not second.is_pick
        with pytest.raises(runs.RunError):
            portraits.set_pick(portrait=second, pick=True)
        portraits.unhide(portrait=second)
        assert not Portrait.objects.get(pk=second.pk).is_hidden


# --- the designer's preview -----------------------------------------------------------------------------------


def test_preview_on_a_sample_double_beside_the_previous_version(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    sample = ready_double(tenant_a, tiny_engine, sample=False, name="Sample Sam")
    real = ready_double(tenant_a, tiny_engine, name="Real Client")
    template, v1 = make_template(tenant_a, "Draft design", published=False, images_per_run=6)
    photographer = add_member(tenant_a, "photographer@studio-a.example", "photographer")
    url = f"{tenant_a.prefix}/runs/preview/{v1.pk}/"

    # An owner marks the sample double on its page.
    client.force_login(tenant_a.owner)
    assert "Use as a sample double" in client.get(f"{tenant_a.prefix}/doubles/{sample.pk}/").content.decode()
    assert client.post(f"{tenant_a.prefix}/runs/sample/{sample.pk}/", {"sample": "1"}).status_code == 302
    assert reload(tenant_a, sample).is_test_subject

    client.force_login(photographer)
    fragment = client.get(url)
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in html and f'id="template-preview-{v1.pk}"' in html
    assert "Sample Sam" in html and "Real Client" not in html and "This is the first version" in html

    # Only sample doubles: another double of the studio is refused with a message.
    refused = client.post(url, {"double": real.pk})
    assert refused.status_code == 400 and "sample doubles" in refused.content.decode()
    refused = client.post(url, {"double": real.pk}, headers={"HX-Request": "true"})
    assert refused.status_code == 200 and "sample doubles" in refused.content.decode()  # htmx swaps 2xx only

    response = client.post(url, {"double": sample.pk}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "The preview was queued" in html and "hx-trigger" in html
    with tenant_context(studio):
        run = RenderRun.objects.get(kind=RenderRun.Kind.PREVIEW)
        item = run.items.get()
    assert run.double_id == sample.pk and item.images == 4 and item.template_version_id == v1.pk  # min(6, 4)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    html = client.get(url).content.decode()
    assert html.count('id="preview-portrait-') == 4 and "hx-trigger" not in html

    # Version 2: its preview beside version 1's.
    v2 = new_version(tenant_a, template, prompt="night portrait of {subject}", images_per_run=1)
    with tenant_context(studio):
        run2 = runs.start_preview(version=v2, double=reload(tenant_a, sample), user=photographer)
    assert run_jobs(tenant_a, run2) == ["succeeded"]
    html = client.get(f"{tenant_a.prefix}/runs/preview/{v2.pk}/").content.decode()
    assert "This version (v2)" in html and "Previous version (v1)" in html
    current, previous = html.split("Previous version (v1)")
    assert current.count('id="preview-portrait-') == 1 and previous.count('id="preview-portrait-') == 4

    # Staff run templates; previews are for photographers, owners and managers.
    staff = add_member(tenant_a, "staff@studio-a.example", "staff")
    client.force_login(staff)
    assert client.get(url).status_code == 200
    assert client.post(url, {"double": sample.pk}).status_code == 404
    with tenant_context(studio):
        with pytest.raises(runs.RunError) as refused_error:
            runs.start_preview(version=v1, double=reload(tenant_a, real))
        assert refused_error.value.status == 409


def test_photographers_look_at_runs_but_do_not_act(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    from tests.generation.factories import make_render_run_item

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        item = make_render_run_item(tenant_a)
        portrait = Portrait.objects.create(
            double=item.run.double, run=item.run, item=item, recipe={"seed": 1}, rank=1, thumbnail="x.webp"
        )
    photographer = add_member(tenant_a, "photographer@studio-a.example", "photographer")
    client.force_login(photographer)
    run_id = item.run_id
    page = client.get(f"{tenant_a.prefix}/runs/{run_id}/")
    assert page.status_code == 200 and "More like me" not in page.content.decode()
    assert client.get(f"{tenant_a.prefix}/runs/new/{item.run.double_id}/").status_code == 404
    for action in ("more-like-me", "reroll", "hide", "unhide", "pick", "unpick"):
        assert client.post(f"{tenant_a.prefix}/runs/portraits/{portrait.pk}/{action}/").status_code == 404
    assert client.post(f"{tenant_a.prefix}/runs/{run_id}/items/{item.pk}/retry/").status_code == 404
    assert client.post(f"{tenant_a.prefix}/runs/sample/{item.run.double_id}/", {"sample": "1"}).status_code == 404


def test_the_watermark_is_the_studios_own_text_else_its_name(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    a.studio.watermark_text = "  © Lumière Portraits  "
    a.studio.save(update_fields=["watermark_text"])
    assert runs.watermark_text(a.studio) == "© Lumière Portraits"
    assert runs.watermark_text(b.studio) == b.studio.name  # no text of its own
