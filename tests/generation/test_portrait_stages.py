"""The portrait pipeline's stages through render runs (real engine: tiny model on the CPU, real dlib, real job
runner, PostgreSQL): a template photo's run keeps the photographer's photo outside the face masks in the stored
full-resolution file at the template's print size; the portrait's recipe names every stage; "more like me" of it
renders into the same photo; a stage that fails fails that template's portraits with a message, not the run."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

from engine import masks, portrait
from generation import portraits, runs
from generation.models import Portrait, RenderRun
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    job_of,
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


def photo_template(tenant: Tenant, **fields: Any) -> tuple[Any, Any, Image.Image]:
    photo = Image.open(FACES / "person_a_02.jpg").convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    template, version = make_template(
        tenant,
        "Wedding photo",
        images_per_run=1,
        reference_mode="photo",
        strength=0.8,
        mask_margin=0.25,
        mask_feather=0.1,
        **fields,
    )
    with tenant_context(tenant.studio):
        version.reference_image.save("wedding.jpg", ContentFile(buffer.getvalue()), save=False)
        type(version).objects.filter(pk=version.pk).update(reference_image=version.reference_image.name)
    with Image.open(io.BytesIO(buffer.getvalue())) as stored:
        return template, version, stored.convert("RGB")


def test_a_template_photo_run_keeps_the_photo_outside_the_face_masks(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_DEMO_MAX_LONG_SIDE = 400
    double = ready_double(tenant_a, tiny_engine)
    template, _version, photo = photo_template(tenant_a, long_side=3000)
    with tenant_context(tenant_a.studio):
        run = runs.start_run(double=double, items=[(template, 1)], user=tenant_a.owner)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        stored = Portrait.objects.get(item__run=run)
        with stored.image.open("rb") as handle:
            image = Image.open(io.BytesIO(handle.read())).convert("RGB")
        with stored.preview.open("rb") as handle:
            preview = Image.open(io.BytesIO(handle.read()))
            preview.load()
    assert max(image.size) == 400  # the template asked for 3000 px; the demo model's print size is capped
    assert max(preview.size) <= runs_preview_side()
    recipe = stored.recipe
    stages = portrait.stage_entries(recipe)
    assert list(stages) == ["base", "template_photo", "face_pass", "upscale", "output_check"]
    assert stages["template_photo"]["strength"] == 0.8 and stages["template_photo"]["faces"] == 1
    assert stages["output_check"]["ok"] is True and recipe["output_size"] == list(image.size)
    (face,) = recipe["faces"]
    expected = np.asarray(portrait.prepare_photo(photo, 400))
    keep = np.ones(expected.shape[:2], dtype=bool)
    left, top, right, bottom = masks.support_box(tuple(face), masks.MaskSettings(0.25, 0.1), image.size)
    keep[top:bottom, left:right] = False
    assert np.array_equal(np.asarray(image)[keep], expected[keep])
    assert not np.array_equal(np.asarray(image)[~keep], expected[~keep])

    # The run page and the API say what was made: the full resolution, the stages, the regenerated faces.
    client.force_login(tenant_a.owner)
    page = client.get(f"{tenant_a.prefix}/runs/{run.pk}/").content.decode()
    width, height = image.size
    assert f"{width}×{height} px" in page and "Template photo (1 face regenerated)" in page
    assert "Output checked" in page
    body = client.get(f"{tenant_a.prefix}/api/portraits/{stored.pk}/").json()
    assert body["size"] == [width, height] and body["faces"] == [face]
    assert [entry["name"] for entry in body["recipe"]["stages"]] == list(stages)

    # "More like me" renders the same seed into the same photo, with more identity.
    with tenant_context(tenant_a.studio):
        job = portraits.more_like_me(portrait=stored, user=tenant_a.owner)
    from jobs.tasks import run_job

    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    with tenant_context(tenant_a.studio):
        child = Portrait.objects.get(parent=stored)
    assert child.recipe["identity_weight"] > recipe["identity_weight"]
    assert (
        portrait.stage_entries(child.recipe)["template_photo"]["photo_sha256"]
        == stages["template_photo"]["photo_sha256"]
    )


def runs_preview_side() -> int:
    from generation.jobs import PREVIEW_SIDE

    return PREVIEW_SIDE


def test_a_failing_stage_fails_its_template_with_a_message_not_the_run(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any], tmp_path: Any
) -> None:
    """The operator's super-resolution model is broken: the template that asks for print size fails with the
    stage's message; the template delivered at its render size still succeeds; the run is "partly failed"."""
    tenant_a, _ = two_tenants
    broken = tmp_path / "broken-esrgan.pth"
    broken.write_bytes(b"not a model")
    settings.ENGINE_UPSCALER_MODEL = str(broken)
    double = ready_double(tenant_a, tiny_engine)
    printed, _ = make_template(tenant_a, "Printed", images_per_run=1, long_side=1024)
    screen, _ = make_template(tenant_a, "Screen", images_per_run=1, long_side=0)
    with tenant_context(tenant_a.studio):
        run = runs.start_run(double=double, items=[(printed, 1), (screen, 1)], user=tenant_a.owner)
        items = {item.template_version.template.name: item for item in run.items.select_related("template_version")}
    assert run_jobs(tenant_a, run) == ["failed", "succeeded"]
    failed = job_of(tenant_a, items["Printed"].job_id)
    assert failed.error.startswith("The upscale failed: ") and "broken-esrgan.pth" in failed.error
    with tenant_context(tenant_a.studio):
        assert runs.get_run(renderrun_id=run.pk).status == RenderRun.Status.PARTLY_FAILED
        assert not Portrait.objects.filter(item=items["Printed"]).exists()
        kept = Portrait.objects.get(item=items["Screen"])
    assert kept.recipe["output_size"] == [64, 64]
    assert portrait.stage_entries(kept.recipe)["upscale"] == {
        "name": "upscale",
        "enabled": False,
        "seconds": portrait.stage_entries(kept.recipe)["upscale"]["seconds"],
    }


def test_the_designer_preview_of_a_template_photo_shows_before_and_after(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_DEMO_MAX_LONG_SIDE = 256
    sample = ready_double(tenant_a, tiny_engine, sample=True, name="Sample Sam")
    _template, version, _photo = photo_template(tenant_a, long_side=3000)
    url = f"{tenant_a.prefix}/runs/preview/{version.pk}/"
    client.force_login(tenant_a.owner)
    assert f'id="before-after-{version.pk}"' not in client.get(url).content.decode()  # no preview yet
    assert client.post(url, {"double": sample.pk}, headers={"HX-Request": "true"}).status_code == 200
    with tenant_context(tenant_a.studio):
        run = RenderRun.objects.get(kind=RenderRun.Kind.PREVIEW)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    html = client.get(url).content.decode()
    assert f'id="before-after-{version.pk}"' in html
    assert 'alt="Before: the template photo as the photographer took it"' in html
    assert "After: the same photo with Sample Sam's face put in" in html
    before = re.search(r'<img class="tpl-cover-lg" src="([^"]+)" alt="Before', html)
    assert before is not None and client.get(before.group(1).replace("&amp;", "&")).status_code == 200
