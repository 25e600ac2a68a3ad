"""Template actions (templates_app/versions.py): versioning that never rewrites the past, restore, publish,
archive, duplicate, the starter catalog, reference images, covers, and the style LoRA a version names."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine import prompts
from templates_app import errors, render_settings, versions
from templates_app.models import ImmutableVersion, Template, TemplateVersion
from templates_app.starters import STARTERS
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.templates_app.conftest import (
    SD15,
    SDXL,
    image_bytes,
    image_upload,
    reload,
    stored_files,
)

pytestmark = pytest.mark.django_db

VERSION_FIELDS = [f.attname for f in TemplateVersion._meta.concrete_fields]


def snapshot(version: TemplateVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in VERSION_FIELDS}


def version_rows(tenant: Tenant, template: Template) -> list[TemplateVersion]:
    with tenant_context(tenant.studio):
        return list(TemplateVersion.objects.filter(template=template).order_by("number"))


def save(tenant: Tenant, template: Template, **kwargs: Any) -> versions.Saved:
    with tenant_context(tenant.studio):
        return versions.save_template(template=template, user=tenant.owner, **kwargs)


# --- creating and versioning ----------------------------------------------------------------------------------


def test_create_makes_a_draft_with_version_1(tenant_a: Tenant, make_template):
    template = make_template()
    template = reload(tenant_a, template)
    assert template.status == Template.Status.DRAFT
    assert template.category == "business"
    version = template.current_version
    assert version.number == 1 and version.note == "First version"
    assert version.prompt == "studio portrait photo of {subject}, soft light, 85mm"
    assert version.base_model == SD15 and version.steps == 30 and version.guidance == 6.5
    assert version.price_per_image == Decimal("12.50")
    assert version.created_by == tenant_a.owner
    assert version.studio_id == tenant_a.studio.pk


def test_defaults_fill_what_a_new_template_leaves_out(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        template = versions.create_template(name="Minimal", settings={"prompt": "portrait of {subject}"})
    version = reload(tenant_a, template).current_version
    assert version.base_model == SD15  # the registry's default
    assert (version.scheduler, version.steps, version.images_per_run) == ("dpmpp_2m_karras", 30, 4)
    assert (version.width, version.height, version.style_lora_id, version.reference_mode) == (None, None, None, "")


def test_editing_settings_makes_version_2_and_leaves_version_1_unchanged(tenant_a: Tenant, make_template):
    template = make_template()
    (v1,) = version_rows(tenant_a, template)
    before = snapshot(v1)
    saved = save(
        tenant_a,
        template,
        settings={"prompt": "black and white portrait of {subject}", "steps": 40, "price_per_image": "15"},
        note="Monochrome",
    )
    assert saved.created and saved.version.number == 2 and saved.version.note == "Monochrome"
    first, second = version_rows(tenant_a, template)
    assert snapshot(first) == before  # the past is untouched, field by field
    assert second.prompt == "black and white portrait of {subject}" and second.steps == 40
    assert second.price_per_image == Decimal("15.00")
    assert second.guidance == 6.5 and second.base_model == SD15  # keys left out keep their value
    assert reload(tenant_a, template).current_version_id == second.pk


def test_saving_without_render_changes_makes_no_version(tenant_a: Tenant, make_template):
    template = make_template()
    saved = save(tenant_a, template, name="Executive headshot", description="For boards", category="classic")
    assert not saved.created and saved.version.number == 1
    same = save(tenant_a, template, settings={"prompt": " studio portrait photo of {subject}, soft light, 85mm "})
    assert not same.created
    numbers = save(tenant_a, template, settings={"steps": "30", "guidance": "6.50", "price_per_image": "12.5"})
    assert not numbers.created
    assert len(version_rows(tenant_a, template)) == 1
    template = reload(tenant_a, template)
    assert (template.name, template.description, template.category) == ("Executive headshot", "For boards", "classic")


def test_a_version_is_never_updated(tenant_a: Tenant, make_template):
    template = make_template()
    with tenant_context(tenant_a.studio):
        version = TemplateVersion.objects.get(template=template)
        version.prompt = "changed behind the service's back {subject}"
        with pytest.raises(ImmutableVersion):
            version.save()
    assert version_rows(tenant_a, template)[0].prompt == "studio portrait photo of {subject}, soft light, 85mm"


def test_version_numbers_count_per_template(tenant_a: Tenant, make_template):
    one, two = make_template("One"), make_template("Two")
    save(tenant_a, one, settings={"steps": 20})
    save(tenant_a, one, settings={"steps": 25})
    save(tenant_a, two, settings={"steps": 20})
    assert [v.number for v in version_rows(tenant_a, one)] == [1, 2, 3]
    assert [v.number for v in version_rows(tenant_a, two)] == [1, 2]


def test_invalid_settings_change_nothing(tenant_a: Tenant, make_template):
    template = make_template()
    with pytest.raises(errors.SettingsInvalid) as caught:
        save(tenant_a, template, name="Renamed", settings={"prompt": "no placeholder", "steps": 0})
    assert set(caught.value.errors) == {"prompt", "steps"}
    assert reload(tenant_a, template).name == "Headshot"
    assert len(version_rows(tenant_a, template)) == 1


# --- restore --------------------------------------------------------------------------------------------------


def test_restore_makes_a_new_version_with_the_old_settings(tenant_a: Tenant, make_template):
    template = make_template()
    save(tenant_a, template, settings={"prompt": "film photo of {subject}", "identity_weight": 1.3})
    v1, v2 = version_rows(tenant_a, template)
    with tenant_context(tenant_a.studio):
        v3 = versions.restore_version(template=template, version=v1, user=tenant_a.owner)
    assert v3.number == 3 and v3.note == "Restored from version 1"
    assert render_settings.version_values(v3) == render_settings.version_values(v1)
    assert snapshot(version_rows(tenant_a, template)[1]) == snapshot(v2)
    assert reload(tenant_a, template).current_version_id == v3.pk


def test_restoring_the_current_settings_is_refused(tenant_a: Tenant, make_template):
    template = make_template()
    (v1,) = version_rows(tenant_a, template)
    with tenant_context(tenant_a.studio), pytest.raises(errors.TemplateError) as caught:
        versions.restore_version(template=template, version=v1)
    assert caught.value.status == 409 and "nothing to restore" in caught.value.message


def test_a_version_on_a_model_no_longer_offered_cannot_be_restored(tenant_a: Tenant, make_template, settings):
    template = make_template(base_model=SDXL)
    save(tenant_a, template, settings={"base_model": SD15})
    v1 = version_rows(tenant_a, template)[0]
    settings.ENGINE_ENABLED_MODELS = [SD15]
    with tenant_context(tenant_a.studio), pytest.raises(errors.TemplateError) as caught:
        versions.restore_version(template=template, version=v1)
    assert caught.value.status == 409
    assert "Version 1 can't be restored" in caught.value.message and "not available" in caught.value.message


# --- publish, unpublish, archive ------------------------------------------------------------------------------


def test_publish_and_unpublish(tenant_a: Tenant, make_template):
    template = make_template()
    with tenant_context(tenant_a.studio):
        versions.publish(template=template)
        assert template.status == Template.Status.PUBLISHED
        versions.publish(template=template)  # again: nothing changes
        versions.unpublish(template=template)
    assert reload(tenant_a, template).status == Template.Status.DRAFT


def test_publishing_needs_an_enabled_base_model(tenant_a: Tenant, make_template, settings):
    template = make_template(base_model=SDXL)
    settings.ENGINE_ENABLED_MODELS = [SD15, "tiny-sd15"]
    with tenant_context(tenant_a.studio), pytest.raises(errors.TemplateError) as caught:
        versions.publish(template=template)
    assert caught.value.status == 409
    assert caught.value.message == (
        "This template can't be published: The base model 'sdxl-photo' is not available to studios on this platform."
    )
    assert reload(tenant_a, template).status == Template.Status.DRAFT


def test_archived_templates_cannot_be_published_and_leave_the_list(tenant_a: Tenant, make_template):
    template = make_template()
    other = make_template("Other")
    with tenant_context(tenant_a.studio):
        versions.publish(template=template)
        versions.archive(template=template)
        with pytest.raises(errors.TemplateError) as caught:
            versions.publish(template=template)
        assert caught.value.status == 409 and "archived" in caught.value.message
        from templates_app import selectors

        assert list(selectors.template_list()) == [other]
        assert template in selectors.template_list(include_archived=True)
        assert list(selectors.published_templates()) == []
        versions.unarchive(template=template)
    assert reload(tenant_a, template).status == Template.Status.DRAFT


# --- duplicate and the starter catalog ------------------------------------------------------------------------


def test_duplicate_makes_a_draft_copy_with_version_1(tenant_a: Tenant, make_template):
    template = make_template()
    save(tenant_a, template, settings={"steps": 42})
    with tenant_context(tenant_a.studio):
        versions.publish(template=template)
        copy = versions.duplicate(template=template, user=tenant_a.owner)
    copy = reload(tenant_a, copy)
    assert copy.name == "Copy of Headshot" and copy.status == Template.Status.DRAFT
    (v1,) = version_rows(tenant_a, copy)
    assert v1.number == 1 and v1.steps == 42 and "Copied from" in v1.note
    original = version_rows(tenant_a, template)[-1]
    assert render_settings.version_values(v1) == render_settings.version_values(original)
    assert reload(tenant_a, template).status == Template.Status.PUBLISHED


@pytest.mark.parametrize("starter", STARTERS, ids=[s.key for s in STARTERS])
def test_every_starter_copies_into_a_valid_draft(tenant_a: Tenant, starter):
    with tenant_context(tenant_a.studio):
        template = versions.copy_starter(key=starter.key, user=tenant_a.owner)
        versions.publish(template=template)  # its settings pass every check
    template = reload(tenant_a, template)
    assert template.starter_key == starter.key and template.name == starter.name
    version = template.current_version
    assert version.base_model == SD15 and version.prompt == starter.prompt
    if starter.subject_slots > 1:  # a group starter names each person (tests/templates_app/test_subject_slots.py)
        assert all(f"{{subject_{n}}}" in version.prompt for n in range(1, starter.subject_slots + 1))
    else:
        assert "{subject}" in version.prompt
    assert version.subject_slots == starter.subject_slots
    assert version.price_per_image == starter.price_per_image


def test_the_catalog_has_about_ten_distinct_starters():
    assert 10 <= len(STARTERS) <= 14
    assert len({s.key for s in STARTERS}) == len(STARTERS)
    categories = {s.category for s in STARTERS}
    assert {"business", "classic", "wedding", "family", "vintage", "fashion", "traditional", "fantasy"} <= categories


@pytest.mark.parametrize("starter", STARTERS, ids=[s.key for s in STARTERS])
def test_every_starter_fits_one_clip_window(starter):
    # CLIP reads 77 positions (75 tokens and the start and end markers) per window. The engine encodes longer
    # prompts whole, but a starter fits one window, where attention is strongest, and so reads the same on any
    # tool; the count is CLIP's own BPE ({subject} as "ohwx person").
    assert prompts.prompt_tokens(starter.prompt) <= prompts.CHUNK_TOKENS
    assert prompts.count_tokens(starter.negative_prompt) <= prompts.CHUNK_TOKENS
    assert prompts.length_problem(starter.prompt) is None
    assert prompts.length_problem(starter.negative_prompt, negative=True) is None


def test_an_unknown_starter_is_a_404(tenant_a: Tenant):
    with tenant_context(tenant_a.studio), pytest.raises(errors.TemplateError) as caught:
        versions.copy_starter(key="no-such-starter")
    assert caught.value.status == 404


# --- reference images, covers and style LoRAs in versions -----------------------------------------------------


def test_a_reference_image_is_stored_clean_and_shared_by_later_versions(
    tenant_a: Tenant, make_template, private_storage
):
    template = make_template()
    saved = save(tenant_a, template, settings={"reference_image": image_upload(), "reference_mode": "img2img"})
    assert saved.created
    name = saved.version.reference_image.name
    assert name.startswith(f"templates/{tenant_a.studio.pk}/reference/") and name.endswith(".jpg")
    assert (private_storage / name).read_bytes()[:3] == b"\xff\xd8\xff"  # re-encoded as JPEG
    later = save(tenant_a, template, settings={"strength": 0.4})
    assert later.created and later.version.reference_image.name == name  # the same file, not a copy
    removed = save(tenant_a, template, settings={"remove_reference_image": True, "reference_mode": ""})
    assert removed.version.reference_image.name == ""
    assert version_rows(tenant_a, template)[1].reference_image.name == name  # the old version keeps it


def test_a_file_that_is_not_an_image_is_refused_as_reference(tenant_a: Tenant, make_template, private_storage):
    template = make_template()
    before = stored_files(private_storage)
    with pytest.raises(errors.SettingsInvalid) as caught:
        save(
            tenant_a,
            template,
            settings={"reference_image": image_upload("pose.jpg", b"<svg></svg>"), "reference_mode": "img2img"},
        )
    assert "reference image can't be used" in caught.value.errors["reference_image"][0]
    assert stored_files(private_storage) == before


def test_cover_images_are_stored_clean(tenant_a: Tenant, make_template, private_storage):
    template = make_template()
    saved = save(tenant_a, template, cover=image_upload("cover.webp", image_bytes(fmt="WEBP")))
    assert not saved.created
    cover = reload(tenant_a, template).cover_image.name
    assert cover.startswith(f"templates/{tenant_a.studio.pk}/cover/")
    assert (private_storage / cover).read_bytes()[:3] == b"\xff\xd8\xff"
    with pytest.raises(errors.TemplateError) as caught:
        save(tenant_a, template, cover=image_upload("cover.png", b"GIF89a" + b"\x00" * 40))
    assert "cover image can't be used" in caught.value.message


def test_a_style_lora_of_the_other_family_is_refused_by_the_template(tenant_a: Tenant, make_template, style_lora):
    xl = style_lora("sdxl", name="XL film")
    template = make_template()
    with pytest.raises(errors.SettingsInvalid) as caught:
        save(tenant_a, template, settings={"style_lora": xl.pk})
    assert caught.value.errors["style_lora"][0].startswith(
        "This style LoRA was made for SDXL; the template uses an SD 1.5 model"
    )
    ok = save(tenant_a, template, settings={"style_lora": xl.pk, "base_model": SDXL})
    assert ok.version.style_lora_id == xl.pk


def test_another_studios_style_lora_is_unknown(tenant_a: Tenant, tenant_b: Tenant, make_template, style_lora):
    theirs = style_lora(tenant=tenant_b)
    template = make_template()
    with pytest.raises(errors.SettingsInvalid) as caught:
        save(tenant_a, template, settings={"style_lora": theirs.pk})
    assert caught.value.errors["style_lora"] == ["Choose one of your studio's style LoRAs (or none)."]
