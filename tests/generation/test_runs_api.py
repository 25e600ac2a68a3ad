"""The render runs and portraits API (create, list, retrieve, retry, portrait actions, signed links, roles, other
studios' ids), the query counts of the run pages, and the web side of runs importing no torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation import runs
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from tenants.context import tenant_context
from tests.conftest import Tenant, add_member
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    make_template,
    ready_double,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]

RECIPE = {"recipe_version": 1, "seed": 5, "adapters": [{"name": "identity", "weight": 1.0}], "identity_weight": 1.0}


def _run_with_portraits(tenant: Tenant, *, items: int, per_item: int) -> RenderRun:
    """A run of factory rows: `items` items (one job each) with `per_item` portraits each (file names only)."""
    from tests.generation.factories import make_render_run
    from tests.jobs.factories import make_job
    from tests.templates_app.factories import make_template_version

    with tenant_context(tenant.studio):
        run = make_render_run(tenant)
        for position in range(items):
            item = RenderRunItem.objects.create(
                run=run,
                template_version=make_template_version(tenant),
                images=per_item,
                position=position,
                seeds=list(range(per_item)),
                job=make_job(tenant),
            )
            Job.objects.filter(pk=item.job_id).update(state=Job.State.SUCCEEDED, progress=100)
            # An unfinished "more like me" of the item: shown with its progress.
            Job.objects.create(
                kind="portraits.render", payload={"double_id": run.double_id, "run_id": run.pk, "item_id": item.pk}
            )
            for rank in range(1, per_item + 1):
                Portrait.objects.create(
                    double=run.double,
                    run=run,
                    item=item,
                    template_version=item.template_version,
                    recipe={**RECIPE, "seed": rank},
                    rank=rank,
                    likeness=90 - rank,
                    is_pick=rank <= 2,
                    is_hidden=rank == per_item and per_item > 2,
                    flags=["blurry"] if rank == 3 else [],
                    image="portraits/x.png",
                    thumbnail="portraits/x.webp",
                    preview="portraits/x.jpg",
                )
        return run


def _count_queries(client: Any, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_run_page_makes_the_same_queries_for_one_portrait_or_many(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, _ = two_tenants
    small = _run_with_portraits(tenant_a, items=1, per_item=1)
    large = _run_with_portraits(tenant_a, items=3, per_item=8)
    client.force_login(tenant_a.owner)
    client.get(f"{tenant_a.prefix}/runs/{small.pk}/")  # warm caches (session, content types)
    one, html_one = _count_queries(client, f"{tenant_a.prefix}/runs/{small.pk}/")
    many, html_many = _count_queries(client, f"{tenant_a.prefix}/runs/{large.pk}/")
    assert html_one.count('class="photo portrait"') == 1 and html_many.count('class="photo portrait"') == 24
    assert html_many.count("More like me") == 21  # hidden ones offer Unhide only
    assert one == many, f"{one} queries for 1 portrait, {many} for 24: a query per row crept in"
    assert many <= 15
    # The item fragment htmx polls: the same for a small and a large item.
    with tenant_context(tenant_a.studio):
        small_item = RenderRunItem.objects.filter(run=small).first()
        large_item = RenderRunItem.objects.filter(run=large).first()
    one, _ = _count_queries(client, f"{tenant_a.prefix}/runs/{small.pk}/items/{small_item.pk}/")
    many, _ = _count_queries(client, f"{tenant_a.prefix}/runs/{large.pk}/items/{large_item.pk}/")
    assert one == many


def test_the_run_list_makes_the_same_queries_for_one_run_or_many(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, _ = two_tenants
    _run_with_portraits(tenant_a, items=2, per_item=2)
    client.force_login(tenant_a.owner)
    client.get(f"{tenant_a.prefix}/runs/")
    one, html = _count_queries(client, f"{tenant_a.prefix}/runs/")
    assert html.count('<tr id="run-') == 1
    for _ in range(4):
        _run_with_portraits(tenant_a, items=3, per_item=1)
    many, html = _count_queries(client, f"{tenant_a.prefix}/runs/")
    assert html.count('<tr id="run-') == 5 and one == many


# --- the API --------------------------------------------------------------------------------------------------


def test_runs_api_create_list_retrieve_and_retry(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, tenant_b = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    theirs = ready_double(tenant_b, tiny_engine)
    template, _ = make_template(tenant_a, "Business", images_per_run=2)
    draft, _ = make_template(tenant_a, "Draft", published=False)
    their_template, _ = make_template(tenant_b, "Theirs")
    client.force_login(tenant_a.owner)
    api = f"{tenant_a.prefix}/api"

    def post(url: str, body: Any = None) -> Any:
        return client.post(url, body or {}, content_type="application/json")

    for body, status, text in (
        ({"double": double.pk, "items": [{"template": template.pk, "count": 0}]}, 400, ""),
        ({"double": theirs.pk, "items": [{"template": template.pk, "count": 1}]}, 400, "no such digital double"),
        ({"double": double.pk, "items": [{"template": their_template.pk, "count": 1}]}, 400, "no template"),
        ({"double": double.pk, "items": [{"template": draft.pk, "count": 1}]}, 409, "not published"),
        ({"double": double.pk, "items": []}, 400, "at least one template"),
    ):
        response = post(f"{api}/runs/", body)
        assert response.status_code == status, response.content
        assert text in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert not RenderRun.objects.exists()

    response = post(f"{api}/runs/", {"double": double.pk, "items": [{"template": template.pk, "count": 2}]})
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["kind"], data["status"], data["double"], data["images"]) == ("client", "queued", double.pk, 2)
    assert data["gpu_seconds"] > 0 and data["created_by"] == tenant_a.owner.email
    item = data["items"][0]
    assert item["template"] == {"id": template.pk, "name": "Business"} and item["template_version"]["number"] == 1
    assert item["job"]["state"] == "queued" and item["job"]["kind"] == "runs.render_item"
    run_id = data["id"]

    listing = client.get(f"{api}/runs/").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == run_id
    assert client.get(f"{api}/runs/?kind=preview").json()["count"] == 0
    assert client.get(f"{api}/runs/?double={theirs.pk}").json()["count"] == 0
    assert client.get(f"{api}/runs/{run_id}/").json()["items"][0]["id"] == item["id"]

    # Retry: only a failed (or cancelled) item.
    retry = f"{api}/runs/{run_id}/items/{item['id']}/retry/"
    assert post(retry).status_code == 409
    with tenant_context(tenant_a.studio):
        Job.objects.filter(pk=item["job"]["id"]).update(state=Job.State.FAILED, error="boom")
    response = post(retry)
    assert response.status_code == 200 and response.json()["items"][0]["job"]["state"] == "queued"

    # Another studio's run or item: 404, whatever the method.
    with tenant_context(tenant_b.studio):
        from tests.generation.factories import make_render_run_item

        their_item = make_render_run_item(tenant_b)
    assert client.get(f"{api}/runs/{their_item.run_id}/").status_code == 404
    assert post(f"{api}/runs/{their_item.run_id}/items/{their_item.pk}/retry/").status_code == 404
    assert post(f"{api}/runs/{run_id}/items/{their_item.pk}/retry/").status_code == 404

    # Photographers read, but don't run templates.
    photographer = add_member(tenant_a, "photographer@studio-a.example", "photographer")
    client.force_login(photographer)
    assert client.get(f"{api}/runs/").status_code == 200
    refused = post(f"{api}/runs/", {"double": double.pk, "items": [{"template": template.pk, "count": 1}]})
    assert refused.status_code == 403 and "owners, managers and staff" in refused.json()["error"]["message"]
    assert post(retry).status_code == 403


def test_the_runs_api_estimates_a_run_with_the_pages_checks_and_starts_nothing(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """The new-run page's estimate, through the API: the same body as starting a run, the same refusals."""
    tenant_a, tenant_b = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    theirs = ready_double(tenant_b, tiny_engine)
    template, version = make_template(tenant_a, "Business", images_per_run=2)
    draft, _ = make_template(tenant_a, "Draft", published=False)
    client.force_login(tenant_a.owner)
    url = f"{tenant_a.prefix}/api/runs/estimate/"

    def post(body: Any) -> Any:
        return client.post(url, body, content_type="application/json")

    answer = post({"double": double.pk, "items": [{"template": template.pk, "count": 3}]})
    assert answer.status_code == 200, answer.content
    data = answer.json()
    with tenant_context(tenant_a.studio):
        version.template = template
        plan = runs.estimate(double=double, items=[(version, 3)])
        assert not RenderRun.objects.exists()  # nothing started
    assert data["images"] == 3 and data["gpu_seconds"] == pytest.approx(plan.gpu_seconds) and plan.gpu_seconds > 0
    [item] = data["items"]
    assert (item["template"], item["template_version"], item["images"]) == (template.pk, 1, 3)
    assert item["seconds"] == pytest.approx(plan.items[0].seconds)
    for body, status, text in (
        ({"double": double.pk, "items": [{"template": draft.pk, "count": 1}]}, 409, "is not published"),
        ({"double": theirs.pk, "items": [{"template": template.pk, "count": 1}]}, 400, "no such digital double"),
        ({"double": double.pk, "items": []}, 400, "at least one template"),
    ):
        response = post(body)
        assert response.status_code == status and text in response.content.decode(), response.content


def test_the_designers_preview_through_the_api(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """The template designer's preview (photographers, owners, managers, keys) on a sample double, by API."""
    tenant_a, tenant_b = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    other = ready_double(tenant_a, tiny_engine)
    _, version = make_template(tenant_a, "Draft look", published=False, images_per_run=2)
    _, theirs = make_template(tenant_b, "Theirs")
    with tenant_context(tenant_a.studio):
        runs.set_test_subject(double=double, is_test_subject=True)
    url = f"{tenant_a.prefix}/api/runs/preview/"

    def post(body: Any) -> Any:
        return client.post(url, body, content_type="application/json")

    client.force_login(add_member(tenant_a, "photo@studio-a.example", "photographer"))
    answer = post({"template_version": version.pk, "double": double.pk})
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert (data["kind"], data["double"], data["images"]) == ("preview", double.pk, 2)
    listed = client.get(f"{tenant_a.prefix}/api/runs/?kind=preview").json()["results"]
    assert [r["id"] for r in listed] == [data["id"]]
    refused = post({"template_version": version.pk, "double": other.pk})  # not a sample
    assert refused.status_code == 400 and "sample doubles" in refused.content.decode()
    assert post({"template_version": theirs.pk, "double": double.pk}).status_code == 400
    client.force_login(add_member(tenant_a, "staff@studio-a.example", "staff"))
    staff = post({"template_version": version.pk, "double": double.pk})
    assert staff.status_code == 403
    assert (
        staff.json()["error"]["message"]
        == "Only the studio's owners, managers and photographers can preview templates."
    )
    with tenant_context(tenant_a.studio):
        assert RenderRun.objects.filter(kind=RenderRun.Kind.PREVIEW).count() == 1


def test_portraits_api_reads_links_and_actions(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    from tests.tenants.factories import make_api_key

    tenant_a, tenant_b = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    template, _ = make_template(tenant_a, "Business", images_per_run=2)
    from generation import runs

    with tenant_context(tenant_a.studio):
        run = runs.start_run(double=double, items=[(template, 2)], user=tenant_a.owner)
        key = make_api_key(tenant_a)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    api = f"{tenant_a.prefix}/api"
    client.force_login(tenant_a.owner)

    listing = client.get(f"{api}/portraits/?run={run.pk}").json()
    assert listing["count"] == 2
    first = listing["results"][0]
    assert [p["rank"] for p in listing["results"]] == [1, 2]
    assert first["template_version"]["name"] == "Business" and first["recipe"]["seed"] == first["seed"]
    assert first["is_pick"] and not first["is_hidden"] and first["can_more_like_me"] is True
    assert first["thumbnail"].startswith("http") and "/media/" in first["preview"]
    assert client.get(first["thumbnail"]).status_code == 200
    pid = first["id"]
    assert client.get(f"{api}/portraits/{pid}/").json()["identity_weight"] == pytest.approx(0.9)

    def post(action: str, portrait_id: int = pid) -> Any:
        return client.post(f"{api}/portraits/{portrait_id}/{action}/", {}, content_type="application/json")

    assert post("hide").json()["is_hidden"] is True
    assert client.get(f"{api}/portraits/?run={run.pk}").json()["count"] == 1  # hidden ones on request only
    assert client.get(f"{api}/portraits/?run={run.pk}&hidden=1").json()["count"] == 2
    assert post("pick").status_code == 409  # a hidden portrait can't be a pick
    assert post("unhide").json()["is_hidden"] is False
    assert post("pick").json()["is_pick"] is True and post("unpick").json()["is_pick"] is False
    response = post("more-like-me")
    assert response.status_code == 202 and response.json()["job"]["kind"] == "portraits.render"
    response = post("reroll")
    assert response.status_code == 202 and response.json()["job"]["state"] == "queued"
    with tenant_context(tenant_a.studio):
        jobs = list(Job.objects.filter(kind="portraits.render").order_by("pk"))
    assert jobs[0].payload["more_like_me_of"] == pid and jobs[1].payload["reroll_of"] == pid
    assert jobs[1].payload["seed"] != first["seed"]

    # An API key lists the portraits and fetches their links with its own Authorization header.
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    client.logout()
    listing = client.get(f"{api}/portraits/?double={double.pk}", headers=headers).json()
    assert listing["count"] == 2
    link = listing["results"][0]["thumbnail"]
    assert client.get(link, headers=headers).status_code == 200
    assert client.get(link).status_code == 404  # the link is for the key, not for anyone holding it

    # Another studio's portrait: 404 for every action.
    with tenant_context(tenant_b.studio):
        from tests.generation.factories import make_portrait

        theirs = make_portrait(tenant_b)
    client.force_login(tenant_a.owner)
    assert client.get(f"{api}/portraits/{theirs.pk}/").status_code == 404
    for action in ("more-like-me", "reroll", "hide", "unhide", "pick", "unpick"):
        assert post(action, theirs.pk).status_code == 404
    with tenant_context(tenant_b.studio):
        assert not Portrait.objects.get(pk=theirs.pk).is_hidden
        assert DigitalDouble.objects.filter(pk=theirs.double_id).exists()


# --- no torch in the web process ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys

HEAVY = {"torch", "diffusers", "transformers", "peft", "accelerate"}
attempts = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            attempts.append(name)
        return None

sys.meta_path.insert(0, Recorder())

import django
django.setup()
import generation.runs, generation.views.runs, generation.api, generation.watermark
from generation.models import Portrait
recipe = {"recipe_version": 1, "adapters": [{"name": "identity", "weight": 1.0}], "identity_weight": 1.0}
assert generation.portraits.can_go_more_like_me(Portrait(recipe=recipe))
print("ATTEMPTS:" + ",".join(attempts + sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""


def test_the_web_side_of_runs_imports_no_torch() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studio_saas.settings"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in out.stdout.splitlines() if ":" in line}
    assert lines.get("ATTEMPTS") == "", out.stdout


def test_the_studio_admin_shows_runs_read_only(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    tenant_a, _ = two_tenants
    run = _run_with_portraits(tenant_a, items=2, per_item=1)
    client.force_login(tenant_a.owner)
    listing = client.get(f"{tenant_a.prefix}/admin/generation/renderrun/")
    assert listing.status_code == 200 and f"/renderrun/{run.pk}/" in listing.content.decode()
    page = client.get(f"{tenant_a.prefix}/admin/generation/renderrun/{run.pk}/change/")
    assert page.status_code == 200 and "Partly failed" not in page.content.decode()
    assert client.post(f"{tenant_a.prefix}/admin/generation/renderrun/{run.pk}/delete/").status_code in (403, 404)
