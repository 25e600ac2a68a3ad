"""A digital double's test renders, "more like me" from its page, and what export and erasure do with its portraits,
on PostgreSQL with the real engine (tiny model, CPU, a real identity LoRA, real jobs). A test render is a one-item
run of an unsaved template version (issue 14: one portrait pipeline). Training itself is in test_doubles.py."""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any

import pytest
from django.core.files.storage import default_storage

from clients import services as intake
from generation import doubles
from generation.models import DigitalDouble, Portrait, RenderRunItem
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    ready_double,
    run_settings_fixture,
    start_test_render_job,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]

RENDER_FORM = {
    "prompt": "studio portrait of {subject}",
    "negative_prompt": "",
    "images": 2,
    "seed": 7,
    "steps": 2,
    "identity_weight": 0.8,
    "scheduler": "euler_a",
    "guidance": 5,
}


def _rendered(tenant: Tenant, double: DigitalDouble) -> list[Portrait]:
    """A test render of the form's settings, run by the real job; its portraits, best first."""
    with tenant_context(tenant.studio):
        job = start_test_render_job(double, dict(RENDER_FORM), tenant.owner)
    assert run_job(job.pk, tenant.studio.pk) == "succeeded"
    with tenant_context(tenant.studio):
        return list(Portrait.objects.filter(double=double).order_by("rank"))


def _more_like(tenant: Tenant, portrait: Portrait) -> tuple[Job, Portrait]:
    with tenant_context(tenant.studio):
        from generation import portraits

        job = portraits.more_like_me(portrait=portrait, user=tenant.owner)
    assert run_job(job.pk, tenant.studio.pk) == "succeeded"
    with tenant_context(tenant.studio):
        return job, Portrait.objects.get(parent=portrait)


def test_a_test_render_from_the_page_is_a_one_item_run_with_ranked_portraits(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Two seeds, every portrait with its full recipe, likeness, flags and a rank; the page shows them through
    signed links."""
    tenant_a, _ = two_tenants
    studio, prefix = tenant_a.studio, tenant_a.prefix
    double = ready_double(tenant_a, tiny_engine)
    client.force_login(tenant_a.owner)

    response = client.post(f"{prefix}/doubles/{double.pk}/render/", RENDER_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_context(studio):
        render_job = doubles.latest_render_job(double=double)
        item = RenderRunItem.objects.select_related("run").get(pk=render_job.payload["item_id"])
    assert (render_job.kind, render_job.cluster) == ("runs.render_item", "gpu")
    assert (item.run.kind, item.template_version_id, item.seeds) == ("test", None, [7, 8])
    assert item.settings["prompt"] == "studio portrait of {subject}" and item.settings["identity_weight"] == 0.8
    assert run_job(render_job.pk, studio.pk) == "succeeded"

    with tenant_context(studio):
        portraits = list(Portrait.objects.filter(double=double).order_by("rank"))
    assert [p.rank for p in portraits] == [1, 2]
    assert sorted(p.seed for p in portraits) == [7, 8]
    for portrait in portraits:
        assert portrait.is_demo and portrait.parent_id is None and isinstance(portrait.flags, list)
        assert portrait.likeness is None or 0 <= portrait.likeness <= 100
        assert (portrait.run_id, portrait.item_id, portrait.template_version_id) == (item.run_id, item.pk, None)
        recipe = portrait.recipe
        assert "studio portrait of" in json.dumps(recipe) and recipe["seed"] == portrait.seed
        assert recipe.get("scheduler") == "euler_a" and recipe.get("steps") == 2
        assert portrait.identity_weight == pytest.approx(0.8)
        with default_storage.open(portrait.image.name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        assert portrait.thumbnail.name and portrait.preview.name  # the one writer makes every derivative

    page = client.get(f"{prefix}/doubles/{double.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Demo model — images are noise" in html and "More like me" in html and "/media/" in html
    media = re.search(r'src="([^"]*/media/[^"]+)"', html).group(1)
    served = client.get(media)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    # A test render stays on its double's page: no run page, not in the run list.
    assert client.get(f"{prefix}/runs/{item.run_id}/").status_code == 404
    assert f"/runs/{item.run_id}/" not in client.get(f"{prefix}/runs/").content.decode()


def test_more_like_me_from_the_double_page_is_the_portraits_action(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """The one service (generation.portraits.more_like_me): same seed and recipe, a higher identity weight, a new
    portrait whose parent is the first, in the same item; the studio comes back to the double's page."""
    tenant_a, _ = two_tenants
    studio, prefix = tenant_a.studio, tenant_a.prefix
    double = ready_double(tenant_a, tiny_engine)
    best = _rendered(tenant_a, double)[0]
    client.force_login(tenant_a.owner)

    html = client.get(f"{prefix}/doubles/{double.pk}/").content.decode()
    assert f'action="{prefix}/runs/portraits/{best.pk}/more-like-me/"' in html
    response = client.post(f"{prefix}/runs/portraits/{best.pk}/more-like-me/")
    assert response.status_code == 302 and response["Location"].endswith(f"/doubles/{double.pk}/#portraits")
    with tenant_context(studio):
        again = doubles.latest_render_job(double=double)
    assert again.kind == "portraits.render"
    assert again.payload == {
        "double_id": double.pk,
        "more_like_me_of": best.pk,
        "run_id": best.run_id,
        "item_id": best.item_id,
    }
    assert run_job(again.pk, studio.pk) == "succeeded"
    with tenant_context(studio):
        child = Portrait.objects.get(parent=best)
    assert child.seed == best.seed and child.item_id == best.item_id
    assert child.identity_weight > best.identity_weight
    assert child.recipe.get("prompt") == best.recipe.get("prompt")
    assert child.recipe.get("more_like_me_step") == 1


def test_export_and_erasure_of_a_double_with_its_portraits(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Export: the doubles' metadata and the portraits' images, never the weights. Erasing the client deletes the
    double and its portraits, files included."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    double = ready_double(tenant_a, tiny_engine)
    portraits = _rendered(tenant_a, double)
    _, child = _more_like(tenant_a, portraits[0])
    stored = double.lora_file.name

    with tenant_context(studio):
        _, stream = intake.export_client_zip(client=double.client)
        with stream, zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
            exported = json.loads(archive.read("doubles.json"))
    assert exported[0]["id"] == double.pk and len(exported[0]["portraits"]) == 3
    assert exported[0]["base_model_licence"]
    assert sum(n.startswith(f"portraits/double-{double.pk}/") for n in names) == 3
    assert not any(n.endswith(".safetensors") or n.endswith(".bin") for n in names)

    files = [f.name for p in [*portraits, child] for f in (p.image, p.thumbnail, p.preview)]
    assert len(files) == 9 and all(default_storage.exists(n) for n in files)
    with tenant_context(studio):
        receipt = intake.erase_client(client=double.client, performed_by=tenant_a.owner)
        assert not DigitalDouble.objects.filter(pk=double.pk).exists()
        assert not Portrait.objects.filter(double_id=double.pk).exists()
    assert receipt.counts["doubles"] == 1 and receipt.counts["portraits"] == 3
    # The LoRA, and each of the 3 portraits' full image, thumbnail and watermarked preview.
    assert receipt.counts["double_files"] == 10
    assert not default_storage.exists(stored)
    assert not any(default_storage.exists(n) for n in files)
