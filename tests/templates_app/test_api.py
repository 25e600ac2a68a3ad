"""The templates API (templates_app/api.py): templates and their versions, actions, style LoRA uploads with
good and bad files, the starter catalog, and who may write."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.drainage import GENERATOR_STATS

from templates_app.models import StyleLora, Template, TemplateVersion
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.templates_app.conftest import SD15, SDXL, SETTINGS, image_upload, lora_bytes, lora_upload, stored_files

pytestmark = pytest.mark.django_db


def api(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/api/{path}"


def key_headers(tenant: Tenant) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="integration", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


def test_create_retrieve_and_list(client_a: Any, tenant_a: Tenant):
    response = client_a.post(
        api(tenant_a, "templates/"),
        {"name": "Boardroom", "category": "business", **SETTINGS, "width": 512, "height": 768},
        "application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["version_created"] is True
    version = body["current_version"]
    assert version["number"] == 1 and version["base_model"] == SD15
    assert (version["width"], version["height"], version["price_per_image"]) == (512, 768, "12.50")
    detail = client_a.get(api(tenant_a, f"templates/{body['id']}/")).json()
    assert detail["name"] == "Boardroom" and detail["cover_image"] is None
    listed = client_a.get(api(tenant_a, "templates/")).json()
    assert [t["id"] for t in listed["results"]] == [body["id"]]


def test_update_makes_a_new_version_only_when_settings_change(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    url = api(tenant_a, f"templates/{template.pk}/")
    response = client_a.patch(url, {"name": "Renamed"}, "application/json")
    assert response.status_code == 200 and response.json()["version_created"] is False
    response = client_a.put(url, {"steps": 44, "note": "More steps"}, "application/json")
    body = response.json()
    assert body["version_created"] is True and body["current_version"]["number"] == 2
    assert body["name"] == "Renamed" and body["current_version"]["prompt"] == SETTINGS["prompt"]
    versions = client_a.get(api(tenant_a, f"templates/{template.pk}/versions/")).json()["results"]
    assert [(v["number"], v["steps"]) for v in versions] == [(2, 44), (1, 30)]
    one = client_a.get(api(tenant_a, f"templates/{template.pk}/versions/{versions[1]['id']}/")).json()
    assert one["steps"] == 30 and one["note"] == "First version"


def test_settings_errors_name_their_fields(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    response = client_a.patch(
        api(tenant_a, f"templates/{template.pk}/"),
        {"prompt": "no placeholder", "steps": 0, "base_model": "nope"},
        "application/json",
    )
    error = assert_error(response, 400)
    assert set(error["fields"]) == {"prompt", "steps", "base_model"}
    assert "Put {subject} in the prompt" in error["fields"]["prompt"][0]
    assert error["fields"]["base_model"] == ["There is no base model called 'nope'."]
    response = client_a.patch(api(tenant_a, f"templates/{template.pk}/"), {"steps": "x"}, "application/json")
    assert_error(response, 400)
    with tenant_context(tenant_a.studio):
        assert TemplateVersion.objects.filter(template=template).count() == 1


def test_a_prompt_over_the_token_bound_is_a_400_with_its_count(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    response = client_a.patch(
        api(tenant_a, f"templates/{template.pk}/"), {"prompt": "{subject} " + "a " * 310}, "application/json"
    )
    error = assert_error(response, 400)
    assert error["fields"] == {"prompt": ["This prompt is 312 tokens long; the most is 225."]}
    with tenant_context(tenant_a.studio):
        assert TemplateVersion.objects.filter(template=template).count() == 1


def test_multipart_create_with_a_reference_image(client_a: Any, tenant_a: Tenant):
    data = {"name": "Pose", **SETTINGS, "reference_mode": "img2img", "reference_image": image_upload()}
    response = client_a.post(api(tenant_a, "templates/"), data)
    assert response.status_code == 201, response.content
    reference = response.json()["current_version"]["reference_image"]
    assert reference.startswith("http://testserver/s/studio-a/media/")
    assert client_a.get(reference).status_code == 200


def test_actions(client_a: Any, tenant_a: Tenant, make_template, settings):
    template = make_template()
    base = api(tenant_a, f"templates/{template.pk}/")
    assert client_a.post(base + "publish/").json()["status"] == "published"
    assert client_a.post(base + "unpublish/").json()["status"] == "draft"
    copy = client_a.post(base + "duplicate/")
    assert copy.status_code == 201 and copy.json()["name"] == "Copy of Headshot"
    assert client_a.post(base + "archive/").json()["status"] == "archived"
    error = assert_error(client_a.post(base + "publish/"), 409)
    assert "archived" in error["message"]
    assert [t["name"] for t in client_a.get(api(tenant_a, "templates/")).json()["results"]] == ["Copy of Headshot"]
    archived = client_a.get(api(tenant_a, "templates/"), {"archived": "1"}).json()["results"]
    assert {t["name"] for t in archived} == {"Headshot", "Copy of Headshot"}
    assert client_a.post(base + "unarchive/").json()["status"] == "draft"
    settings.ENGINE_ENABLED_MODELS = [SDXL]
    error = assert_error(client_a.post(base + "publish/"), 409)
    assert "not available to studios" in error["message"]
    assert_error(client_a.get(api(tenant_a, "templates/"), {"category": "nope"}), 400)


def test_restore_a_version(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    client_a.patch(api(tenant_a, f"templates/{template.pk}/"), {"guidance": 9}, "application/json")
    with tenant_context(tenant_a.studio):
        v1 = TemplateVersion.objects.get(template=template, number=1)
    url = api(tenant_a, f"templates/{template.pk}/versions/{v1.pk}/restore/")
    response = client_a.post(url)
    assert response.status_code == 201
    assert response.json()["number"] == 3 and response.json()["guidance"] == 6.5
    assert response.json()["note"] == "Restored from version 1"
    assert_error(
        client_a.post(api(tenant_a, f"templates/{template.pk}/versions/{response.json()['id']}/restore/")), 409
    )


def test_staff_read_published_templates_and_get_403_on_writes(client: Any, staff: Any, tenant_a: Tenant, make_template):
    from templates_app import versions

    published, draft = make_template("Published"), make_template("Draft")
    with tenant_context(tenant_a.studio):
        versions.publish(template=published)
    client.force_login(staff)
    names = [t["name"] for t in client.get(api(tenant_a, "templates/")).json()["results"]]
    assert names == ["Published"]
    assert client.get(api(tenant_a, f"templates/{draft.pk}/")).status_code == 200
    writes = [
        ("post", "templates/", {"name": "x", **SETTINGS}),
        ("patch", f"templates/{published.pk}/", {"steps": 10}),
        ("post", f"templates/{published.pk}/unpublish/", {}),
        ("post", "starters/copy/", {"key": "corporate-headshot"}),
    ]
    for method, path, data in writes:
        error = assert_error(getattr(client, method)(api(tenant_a, path), data, "application/json"), 403)
        assert "owners, managers and photographers" in error["message"], path
    with tenant_context(tenant_a.studio):
        assert Template.objects.count() == 2


def test_an_api_key_may_design_templates(client: Any, tenant_a: Tenant):
    headers = key_headers(tenant_a)
    response = client.post(
        api(tenant_a, "templates/"), {"name": "From the key", **SETTINGS}, "application/json", headers=headers
    )
    assert response.status_code == 201
    template_id = response.json()["id"]
    assert client.post(api(tenant_a, f"templates/{template_id}/publish/"), headers=headers).status_code == 200


def test_another_studios_template_is_404(client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template):
    theirs = make_template("Theirs", tenant=tenant_b)
    assert_error(client_a.get(api(tenant_a, f"templates/{theirs.pk}/")), 404)
    assert_error(client_a.get(api(tenant_a, f"templates/{theirs.pk}/versions/")), 404)
    assert_error(client_a.patch(api(tenant_a, f"templates/{theirs.pk}/"), {"steps": 3}, "application/json"), 404)


# --- style LoRAs ----------------------------------------------------------------------------------------------


def test_upload_list_and_delete_a_style_lora(client_a: Any, tenant_a: Tenant):
    data = lora_bytes(family="sdxl", rank=8)
    response = client_a.post(
        api(tenant_a, "style-loras/"), {"file": lora_upload(data), "name": "Film", "base_model": SDXL}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["family"], body["rank"], body["size"], body["base_model"]) == ("sdxl", 8, len(data), SDXL)
    assert [lora["name"] for lora in client_a.get(api(tenant_a, "style-loras/")).json()["results"]] == ["Film"]
    assert_error(client_a.post(api(tenant_a, "style-loras/"), {"file": lora_upload(data), "base_model": SDXL}), 409)
    assert client_a.delete(api(tenant_a, f"style-loras/{body['id']}/")).status_code == 204


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "a.safetensors", "empty"),
        (__import__("pickle").dumps([1, 2, 3]), "a.safetensors", "Only .safetensors files are accepted"),
        (lora_bytes(), "a.pt", "pickle-based files"),
        (lora_bytes()[:-10], "a.safetensors", "cut off"),
        (lora_bytes(family="sd15"), "a.safetensors", "This style LoRA was made for SD 1.5; "),
    ],
)
def test_bad_style_lora_uploads_are_400(
    client_a: Any, tenant_a: Tenant, private_storage, data: bytes, name: str, message: str
):
    response = client_a.post(api(tenant_a, "style-loras/"), {"file": lora_upload(data, name), "base_model": SDXL})
    error = assert_error(response, 400)
    assert message in error["message"]
    assert stored_files(private_storage) == []
    with tenant_context(tenant_a.studio):
        assert not StyleLora.objects.exists()


def test_a_style_lora_too_large_for_the_setting(client_a: Any, tenant_a: Tenant, settings):
    data = lora_bytes()
    settings.STYLE_LORA_MAX_BYTES = 1024
    error = assert_error(client_a.post(api(tenant_a, "style-loras/"), {"file": lora_upload(data)}), 400)
    assert "limit for a style LoRA" in error["message"]
    error = assert_error(client_a.post(api(tenant_a, "style-loras/"), {}, "application/json"), 400)
    assert "field `file`" in error["message"]


def test_a_used_style_lora_cannot_be_deleted(client_a: Any, tenant_a: Tenant, make_template, style_lora):
    lora = style_lora()
    make_template(style_lora=lora.pk)
    error = assert_error(client_a.delete(api(tenant_a, f"style-loras/{lora.pk}/")), 409)
    assert "can't be deleted" in error["message"]


# --- starters -------------------------------------------------------------------------------------------------


def test_starters_list_and_copy(client_a: Any, tenant_a: Tenant):
    starters = client_a.get(api(tenant_a, "starters/")).json()
    assert len(starters) >= 10 and {"key", "prompt", "price_per_image"} <= set(starters[0])
    response = client_a.post(api(tenant_a, "starters/copy/"), {"key": starters[0]["key"]}, "application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["starter_key"] == starters[0]["key"] and body["status"] == "draft"
    assert body["current_version"]["base_model"] == SD15
    assert_error(client_a.post(api(tenant_a, "starters/copy/"), {"key": "nope"}, "application/json"), 404)
    assert_error(client_a.post(api(tenant_a, "starters/copy/"), {}, "application/json"), 400)


def test_the_templates_api_is_in_the_schema_without_warnings(client: Any):
    GENERATOR_STATS.reset()
    schema = client.get("/api/schema/?format=json").json()
    for path in (
        "/api/templates/",
        "/api/templates/{template_id}/",
        "/api/templates/{template_id}/publish/",
        "/api/templates/{template_id}/versions/{templateversion_id}/",
        "/api/templates/{template_id}/versions/{templateversion_id}/restore/",
        "/api/style-loras/",
        "/api/style-loras/{stylelora_id}/",
        "/api/starters/",
        "/api/starters/copy/",
    ):
        assert path in schema["paths"], path
    problems = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if "templates_app" in m]
    assert problems == []


def test_an_image_over_the_upload_limit_is_refused(client_a: Any, tenant_a: Tenant, settings):
    settings.INTAKE_MAX_UPLOAD_BYTES = 2048
    data = {"name": "Pose", **SETTINGS, "reference_mode": "img2img", "reference_image": image_upload()}
    error = assert_error(client_a.post(api(tenant_a, "templates/"), data), 400)
    assert "larger than" in error["message"]
    with tenant_context(tenant_a.studio):
        assert not Template.objects.exists()
