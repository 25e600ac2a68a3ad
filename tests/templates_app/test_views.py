"""The template pages: the catalog, the designer (photographers edit, staff look), versions, style LoRA uploads
with good and bad files, and the starter catalog."""

from __future__ import annotations

import html as html_lib
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse

from templates_app import versions
from templates_app.models import StyleLora, Template, TemplateVersion
from templates_app.starters import STARTERS
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.templates_app.conftest import (
    SD15,
    SDXL,
    image_upload,
    lora_bytes,
    lora_upload,
    raw_safetensors,
    reload,
    stored_files,
)

pytestmark = pytest.mark.django_db

EDIT_FORBIDDEN = "Only the studio's owners, managers and photographers can change templates"


def url(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/templates/{path}"


def text(response: Any) -> str:
    """The page as a person reads it (entities such as &#x27; decoded)."""
    return html_lib.unescape(response.content.decode())


def studio_reverse(name: str, **kwargs: Any) -> str:
    return reverse(name, urlconf="studio_saas.urls_studio", **kwargs)


def form_data(template: Template | None = None, **changes: Any) -> dict[str, Any]:
    """What the designer posts: every field, as the page fills it in."""
    data = {
        "name": template.name if template else "Wedding glow",
        "category": template.category if template else "wedding",
        "description": "",
        "prompt": "wedding portrait of {subject}, golden backlight",
        "negative_prompt": "blurry",
        "base_model": SD15,
        "style_lora": "",
        "style_weight": "0.8",
        "reference_mode": "",
        "strength": "0.6",
        "scheduler": "dpmpp_2m_karras",
        "steps": "30",
        "guidance": "6.5",
        "width": "",
        "height": "",
        "identity_weight": "1",
        "images_per_run": "4",
        "price_per_image": "12.50",
        "face_pass": "on",
        "face_denoise": "0.4",
        "face_identity_weight": "1",
        "long_side": "3000",
        "upscale_denoise": "0.25",
        "mask_margin": "0.3",
        "mask_feather": "0.15",
        "note": "",
    }
    if template is not None and template.current_version is not None:
        v = template.current_version
        data.update(
            prompt=v.prompt,
            negative_prompt=v.negative_prompt,
            steps=str(v.steps),
            guidance=f"{v.guidance:g}",
            price_per_image=str(v.price_per_image),
            images_per_run=str(v.images_per_run),
            face_denoise=f"{v.face_denoise:g}",
            face_identity_weight=f"{v.face_identity_weight:g}",
            long_side=str(v.long_side),
            upscale_denoise=f"{v.upscale_denoise:g}",
            mask_margin=f"{v.mask_margin:g}",
            mask_feather=f"{v.mask_feather:g}",
        )
        if not v.face_pass:
            data.pop("face_pass")
    data.update(changes)
    return data


def version_rows(tenant: Tenant, template: Template) -> list[TemplateVersion]:
    with tenant_context(tenant.studio):
        return list(TemplateVersion.objects.filter(template=template).order_by("number"))


# --- the catalog ----------------------------------------------------------------------------------------------


def test_the_list_shows_each_templates_facts(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template("Executive")
    make_template("Zeta", base_model=SDXL)
    response = client_a.get(url(tenant_a))
    assert response.status_code == 200
    html = text(response)
    assert "Executive" in html and "Business headshot" in html and "Draft" in html
    assert "v1" in html and "12.50" in html and SD15 in html and SDXL in html
    assert f'href="{tenant_a.prefix}/templates/{template.pk}/"' in html
    assert 'aria-current="page"' in html and ">Templates<" in html


def test_the_list_filters_by_category_and_status(client_a: Any, tenant_a: Tenant, make_template):
    headshot = make_template("Headshot")
    wedding = make_template("Wedding")
    archived = make_template("Old one")
    with tenant_context(tenant_a.studio):
        versions.save_template(template=wedding, category="wedding")
        versions.publish(template=headshot)
        versions.archive(template=archived)

    def rows(**params: str) -> set[int]:
        html = client_a.get(url(tenant_a), params).content.decode()
        return {t.pk for t in (headshot, wedding, archived) if f'id="template-{t.pk}"' in html}

    assert rows(category="wedding") == {wedding.pk}
    assert rows(status="published") == {headshot.pk}
    assert rows() == {headshot.pk, wedding.pk}  # archived: hidden unless asked for
    assert rows(status="archived") == {archived.pk}


def test_a_bad_filter_value_is_not_an_error_page(client_a: Any, tenant_a: Tenant):
    response = client_a.get(url(tenant_a), {"category": "<script>", "page": "x"})
    assert response.status_code == 200
    assert "<script>" not in response.content.decode()  # shown escaped, in the filter's error


def test_staff_see_published_templates_only_and_no_edit_links(staff_client: Any, tenant_a: Tenant, make_template):
    published = make_template("Published one")
    make_template("Draft one")
    with tenant_context(tenant_a.studio):
        versions.publish(template=published)
    html = staff_client.get(url(tenant_a)).content.decode()
    assert "Published one" in html and "Draft one" not in html
    assert "New template" not in html


# --- creating and designing -----------------------------------------------------------------------------------


def test_a_photographer_creates_a_template(photographer_client: Any, tenant_a: Tenant, photographer: Any):
    assert photographer_client.get(url(tenant_a, "new/")).status_code == 200
    response = photographer_client.post(url(tenant_a, "new/"), form_data())
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        template = Template.objects.select_related("current_version").get(name="Wedding glow")
    assert response["Location"].endswith(f"/templates/{template.pk}/")
    assert template.created_by == photographer and template.category == "wedding"
    assert template.current_version.number == 1 and template.current_version.guidance == 6.5


def test_create_form_errors_are_400_with_their_messages(photographer_client: Any, tenant_a: Tenant):
    response = photographer_client.post(
        url(tenant_a, "new/"), form_data(prompt="a portrait", steps="500", width="512", name="")
    )
    assert response.status_code == 400
    html = text(response)
    assert "Put {subject} in the prompt" in html
    assert "between 1 and 100" in html
    assert "Give both the width and the height" in html
    assert "Give the template a name." in html
    with tenant_context(tenant_a.studio):
        assert not Template.objects.exists()


def test_the_designer_saves_a_new_version_only_when_settings_change(client_a: Any, tenant_a: Tenant, make_template):
    template = reload(tenant_a, make_template())
    page = client_a.get(url(tenant_a, f"{template.pk}/"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'type="range"' in html and "More beautiful" in html and "More like me" in html
    response = client_a.post(url(tenant_a, f"{template.pk}/"), form_data(template, name="Renamed"), follow=True)
    assert "still version 1" in text(response)
    assert len(version_rows(tenant_a, template)) == 1
    response = client_a.post(
        url(tenant_a, f"{template.pk}/"),
        form_data(template, name="Renamed", steps="45", note="More steps"),
        follow=True,
    )
    assert "Saved as version 2" in text(response)
    v1, v2 = version_rows(tenant_a, template)
    assert (v1.steps, v2.steps, v2.note) == (30, 45, "More steps")
    assert reload(tenant_a, template).name == "Renamed"


def test_the_designer_shows_errors_as_400(client_a: Any, tenant_a: Tenant, make_template):
    template = reload(tenant_a, make_template())
    response = client_a.post(url(tenant_a, f"{template.pk}/"), form_data(template, identity_weight="3"))
    assert response.status_code == 400
    assert "The identity weight must be between 0 and 2." in text(response)
    assert len(version_rows(tenant_a, template)) == 1


def test_the_designer_refuses_a_prompt_over_the_token_bound(client_a: Any, tenant_a: Tenant, make_template):
    template = reload(tenant_a, make_template())
    data = form_data(template, negative_prompt="blurry, " * 120)
    response = client_a.post(url(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 400
    assert "This negative prompt is 240 tokens long; the most is 225." in text(response)
    assert len(version_rows(tenant_a, template)) == 1


def test_reference_and_cover_uploads_in_the_designer(client_a: Any, tenant_a: Tenant, make_template, private_storage):
    template = reload(tenant_a, make_template())
    data = form_data(template, reference_mode="img2img", strength="0.5")
    data["reference_image"] = image_upload()
    data["cover_image"] = image_upload("cover.png")
    response = client_a.post(url(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 302, text(response)[:2000]
    template = reload(tenant_a, template)
    assert template.cover_image.name and template.current_version.reference_image.name
    assert template.current_version.number == 2
    html = client_a.get(url(tenant_a)).content.decode()
    assert "/media/" in html  # the cover, through a signed link
    page = client_a.get(url(tenant_a, f"{template.pk}/")).content.decode()
    media = page.split('alt="The current reference image"')[0].rsplit('src="', 1)[1].split('"')[0]
    assert "/media/" in media
    served = client_a.get(media)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"


def test_a_bad_reference_file_is_a_400_and_nothing_is_stored(
    client_a: Any, tenant_a: Tenant, make_template, private_storage
):
    template = reload(tenant_a, make_template())
    before = stored_files(private_storage)
    data = form_data(template, reference_mode="img2img")
    data["reference_image"] = image_upload("pose.jpg", b"%PDF-1.7 not an image")
    response = client_a.post(url(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 400
    assert "The reference image can't be used" in text(response)
    assert stored_files(private_storage) == before


def test_staff_look_but_get_403_on_every_edit(staff_client: Any, tenant_a: Tenant, make_template):
    template = reload(tenant_a, make_template())
    page = staff_client.get(url(tenant_a, f"{template.pk}/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "About this template" in html and "<form" not in html.split("<main")[1].split("</main>")[0]
    v1 = version_rows(tenant_a, template)[0]
    edits = [
        ("new/", {}),
        (f"{template.pk}/", form_data(template, steps="12")),
        (f"{template.pk}/publish/", {}),
        (f"{template.pk}/unpublish/", {}),
        (f"{template.pk}/duplicate/", {}),
        (f"{template.pk}/archive/", {}),
        (f"{template.pk}/unarchive/", {}),
        (f"{template.pk}/versions/{v1.pk}/restore/", {}),
        ("starters/copy/", {"key": STARTERS[0].key}),
        ("styles/upload/", {"file": lora_upload(lora_bytes()), "base_model": SD15}),
    ]
    for path, data in edits:
        response = staff_client.post(url(tenant_a, path), data)
        assert response.status_code == 403, path
        assert EDIT_FORBIDDEN in text(response), path
    assert staff_client.get(url(tenant_a, "new/")).status_code == 403
    assert len(version_rows(tenant_a, template)) == 1
    with tenant_context(tenant_a.studio):
        assert Template.objects.count() == 1 and not StyleLora.objects.exists()


def test_another_studios_template_is_404(client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template):
    theirs = make_template("Theirs", tenant=tenant_b)
    assert client_a.get(url(tenant_a, f"{theirs.pk}/")).status_code == 404
    assert client_a.post(url(tenant_a, f"{theirs.pk}/publish/")).status_code == 404


def test_the_designer_embeds_the_live_preview_when_there_is_one(client_a: Any, tenant_a: Tenant, make_template):
    template = reload(tenant_a, make_template())
    html = client_a.get(url(tenant_a, f"{template.pk}/")).content.decode()
    try:
        preview = studio_reverse("template_preview", args=[template.current_version_id])
    except NoReverseMatch:
        assert "The live preview is not available" in html
    else:
        assert (
            f'hx-get="{tenant_a.prefix}{preview}"' in html
            and 'hx-trigger="load"' in html
            and 'id="template-preview"' in html
        )


# --- actions and versions -------------------------------------------------------------------------------------


def test_publish_unpublish_duplicate_archive(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    assert client_a.post(url(tenant_a, f"{template.pk}/publish/")).status_code == 302
    assert reload(tenant_a, template).status == "published"
    assert client_a.post(url(tenant_a, f"{template.pk}/unpublish/")).status_code == 302
    assert reload(tenant_a, template).status == "draft"
    response = client_a.post(url(tenant_a, f"{template.pk}/duplicate/"))
    with tenant_context(tenant_a.studio):
        copy = Template.objects.get(name="Copy of Headshot")
    assert response["Location"].endswith(f"/templates/{copy.pk}/")
    assert client_a.post(url(tenant_a, f"{template.pk}/archive/")).status_code == 302
    response = client_a.post(url(tenant_a, f"{template.pk}/publish/"))
    assert response.status_code == 409
    assert "unarchive it before publishing" in text(response)
    assert client_a.get(url(tenant_a, f"{template.pk}/publish/")).status_code == 405


def test_publishing_a_template_on_a_disabled_model_is_409(client_a: Any, tenant_a: Tenant, make_template, settings):
    template = make_template(base_model=SDXL)
    settings.ENGINE_ENABLED_MODELS = [SD15]
    response = client_a.post(url(tenant_a, f"{template.pk}/publish/"))
    assert response.status_code == 409
    assert "is not available to studios on this platform" in text(response)


def test_compare_two_versions_side_by_side(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    with tenant_context(tenant_a.studio):
        versions.save_template(template=template, settings={"steps": 50, "identity_weight": 1.4})
    v1, v2 = version_rows(tenant_a, template)
    response = client_a.get(url(tenant_a, f"{template.pk}/versions/compare/"))  # default: current vs previous
    assert response.status_code == 200
    html = text(response)
    assert "2 settings changed" in html
    assert '<tr class="changed" id="field-steps">' in html and '<tr class="" id="field-prompt">' in html
    response = client_a.get(url(tenant_a, f"{template.pk}/versions/compare/"), {"a": v2.pk, "b": v2.pk})
    assert "The two versions have the same settings." in text(response)
    assert client_a.get(url(tenant_a, f"{template.pk}/versions/compare/"), {"a": "x"}).status_code == 400
    other = make_template("Other")
    other_version = version_rows(tenant_a, other)[0]
    response = client_a.get(url(tenant_a, f"{template.pk}/versions/compare/"), {"a": other_version.pk})
    assert response.status_code == 404


def test_restore_from_the_page(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    with tenant_context(tenant_a.studio):
        versions.save_template(template=template, settings={"steps": 50})
    v1, _ = version_rows(tenant_a, template)
    response = client_a.post(url(tenant_a, f"{template.pk}/versions/{v1.pk}/restore/"), follow=True)
    assert "Version 1 was restored as version 3." in text(response)
    assert reload(tenant_a, template).current_version.steps == 30
    other = make_template("Other")
    response = client_a.post(url(tenant_a, f"{other.pk}/versions/{v1.pk}/restore/"))
    assert response.status_code == 404  # a version of another template


# --- style LoRAs ----------------------------------------------------------------------------------------------


def test_upload_a_good_style_lora(photographer_client: Any, tenant_a: Tenant, private_storage):
    data = lora_bytes(family="sdxl", rank=8)
    response = photographer_client.post(
        url(tenant_a, "styles/upload/"), {"file": lora_upload(data), "name": "Film", "base_model": SDXL}, follow=True
    )
    assert response.status_code == 200
    assert "“Film” was checked and added (SDXL, rank 8)." in text(response)
    with tenant_context(tenant_a.studio):
        lora = StyleLora.objects.get()
    assert (private_storage / lora.file.name).read_bytes() == data


BAD_FILES = [
    ("empty", b"", "style.safetensors", "The file is empty"),
    ("pickle", __import__("pickle").dumps({"w": [1.0]}), "style.safetensors", "Only .safetensors files are accepted"),
    ("ckpt", lora_bytes(), "style.ckpt", "pickle-based files (.ckpt, .pt, .bin) can run code when loaded"),
    ("truncated", lora_bytes()[:-64], "style.safetensors", "cut off"),
    ("header past the end", (10**6).to_bytes(8, "little") + b"{}", "s.safetensors", "header says it is"),
    ("no tensors", raw_safetensors({}, b""), "s.safetensors", "holds no tensors"),
    ("sdxl on sd15", lora_bytes(family="sdxl"), "xl.safetensors", "This style LoRA was made for SDXL"),
]


@pytest.mark.parametrize(("label", "data", "name", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_style_lora_files_get_their_message_and_a_400(
    client_a: Any, tenant_a: Tenant, private_storage, label: str, data: bytes, name: str, message: str
):
    before = stored_files(private_storage)
    response = client_a.post(url(tenant_a, "styles/upload/"), {"file": lora_upload(data, name), "base_model": SD15})
    assert response.status_code == 400
    assert message in text(response)
    assert stored_files(private_storage) == before
    with tenant_context(tenant_a.studio):
        assert not StyleLora.objects.exists()


def test_a_style_lora_over_the_limit_is_refused_while_it_streams(client_a: Any, tenant_a: Tenant, settings):
    data = lora_bytes()
    settings.STYLE_LORA_MAX_BYTES = len(data) - 10
    response = client_a.post(url(tenant_a, "styles/upload/"), {"file": lora_upload(data), "base_model": SD15})
    assert response.status_code == 400
    assert "the limit for a style LoRA" in text(response)
    with tenant_context(tenant_a.studio):
        assert not StyleLora.objects.exists()


def test_the_style_lora_page_and_delete(client_a: Any, tenant_a: Tenant, style_lora):
    lora = style_lora()
    html = client_a.get(url(tenant_a, "styles/")).content.decode()
    assert "Film look" in html and "SD 1.5" in html and "Upload a style LoRA" in html
    assert client_a.post(url(tenant_a, f"styles/{lora.pk}/delete/")).status_code == 302
    with tenant_context(tenant_a.studio):
        assert not StyleLora.objects.exists()


def test_the_designer_offers_only_the_studios_style_loras(
    client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template, style_lora
):
    ours = style_lora(name="Our film")
    style_lora(name="Their film", tenant=tenant_b)
    template = make_template()
    html = client_a.get(url(tenant_a, f"{template.pk}/")).content.decode()
    assert "Our film" in html and "Their film" not in html
    assert f'value="{ours.pk}"' in html


# --- the starter catalog --------------------------------------------------------------------------------------


def test_the_starter_catalog_and_copy(client_a: Any, tenant_a: Tenant):
    html = client_a.get(url(tenant_a, "starters/")).content.decode()
    for starter in STARTERS:
        assert starter.name.replace("'", "&#x27;") in html
    assert html.count("Copy to my catalog") == len(STARTERS)
    response = client_a.post(url(tenant_a, "starters/copy/"), {"key": "corporate-headshot"})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        template = Template.objects.get(starter_key="corporate-headshot")
    assert template.status == "draft" and template.name == "Corporate headshot"
    assert "In your catalog" in client_a.get(url(tenant_a, "starters/")).content.decode()
    response = client_a.post(url(tenant_a, "starters/copy/"), {"key": "nope"})
    assert response.status_code == 404
    assert "There is no starter template called “nope”." in text(response)
    assert client_a.post(url(tenant_a, "starters/copy/"), {}).status_code == 400


def test_an_image_over_the_upload_limit_is_refused_by_the_designer(
    client_a: Any, tenant_a: Tenant, make_template, settings
):
    template = reload(tenant_a, make_template())
    settings.INTAKE_MAX_UPLOAD_BYTES = 2048
    data = form_data(template, reference_mode="img2img")
    data["reference_image"] = image_upload()
    response = client_a.post(url(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 400
    assert "larger than" in text(response)
    assert len(version_rows(tenant_a, template)) == 1
