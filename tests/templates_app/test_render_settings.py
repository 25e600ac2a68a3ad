"""The render-settings check shared by the designer form and the API (render_settings.clean_settings): every bad value
gets a message that says what to do, on its field."""

from __future__ import annotations

from typing import Any

import pytest

from templates_app import render_settings
from templates_app.errors import SettingsInvalid
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.templates_app.conftest import SD15, SETTINGS, image_upload

pytestmark = pytest.mark.django_db


def errors(tenant: Tenant, **changes: Any) -> dict[str, list[str]]:
    with tenant_context(tenant.studio), pytest.raises(SettingsInvalid) as caught:
        render_settings.clean_settings(data={**SETTINGS, **changes})
    return caught.value.errors


def test_good_settings_pass(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        clean = render_settings.clean_settings(data={**SETTINGS, "width": "512", "height": 768})
    assert clean.base_model == SD15 and (clean.width, clean.height) == (512, 768)
    assert clean.steps == 30 and str(clean.price_per_image) == "12.50"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"prompt": "  "}, "prompt", "Write a prompt"),
        ({"prompt": "portrait of the client"}, "prompt", "Put {subject} in the prompt where the client should appear"),
        ({"prompt": "portrait of {Subject}"}, "prompt", "Write the placeholder exactly as {subject}"),
        ({"prompt": "portrait of { subject }"}, "prompt", "{ subject } would appear in the prompt as written"),
        ({"prompt": "portrait of {subject} and {client}"}, "prompt", "{client} would appear"),
        ({"prompt": "portrait of [subject]"}, "prompt", "Write the placeholder exactly as {subject}"),
        ({"prompt": "{subject} " + "x" * 1000}, "prompt", "1000 at most"),
        ({"negative_prompt": "x" * 1001}, "negative_prompt", "1000 at most"),
        ({"base_model": "no-such-model"}, "base_model", "There is no base model called 'no-such-model'."),
        ({"base_model": ""}, "base_model", "Choose a base model."),
        ({"scheduler": "lms"}, "scheduler", "Choose a scheduler: DPM++ 2M Karras, Euler ancestral, DDIM."),
        ({"steps": 0}, "steps", "The number of steps must be between 1 and 100."),
        ({"steps": 101}, "steps", "between 1 and 100"),
        ({"steps": "ten"}, "steps", "The number of steps must be a whole number."),
        ({"steps": "12.5"}, "steps", "must be a whole number"),
        ({"steps": ""}, "steps", "Enter the number of steps."),
        ({"guidance": 30.5}, "guidance", "The guidance scale must be between 0 and 30."),
        ({"guidance": "nan"}, "guidance", "must be a number"),
        ({"width": 300, "height": 512}, "width", "multiple of 64 between 256 and 2048"),
        ({"width": 4096, "height": 512}, "width", "multiple of 64 between 256 and 2048"),
        ({"width": 512}, "height", "Give both the width and the height, or neither"),
        ({"height": 512, "width": ""}, "width", "Give both the width and the height, or neither"),
        ({"identity_weight": 2.5}, "identity_weight", "The identity weight must be between 0 and 2."),
        ({"identity_weight": -0.1}, "identity_weight", "between 0 and 2"),
        ({"style_weight": 3}, "style_weight", "The style LoRA weight must be between 0 and 2."),
        ({"images_per_run": 33}, "images_per_run", "between 1 and 32"),
        ({"images_per_run": 0}, "images_per_run", "between 1 and 32"),
        ({"price_per_image": "-1"}, "price_per_image", "can't be negative"),
        ({"price_per_image": "1.234"}, "price_per_image", "at most 2 decimals"),
        ({"price_per_image": "twelve"}, "price_per_image", "an amount like 12.50"),
        ({"price_per_image": "Infinity"}, "price_per_image", "an amount like 12.50"),
        ({"strength": 0.01}, "strength", "The reference strength must be between 0.05 and 1."),
        ({"reference_mode": "depth"}, "reference_mode", "Choose how the reference image is used"),
        ({"reference_mode": "img2img"}, "reference_image", "Add a reference image: “Composition (img2img)”"),
        ({"style_lora": "abc"}, "style_lora", "Choose one of your studio's style LoRAs"),
        ({"style_lora": 999999}, "style_lora", "Choose one of your studio's style LoRAs"),
        ({"reference_image": "https://example.com/pose.jpg"}, "reference_image", "Send the reference image as a file"),
    ],
)
def test_each_bad_value_has_its_message(tenant_a: Tenant, changes: dict[str, Any], field: str, message: str):
    found = errors(tenant_a, **changes)
    assert field in found, found
    assert message in found[field][0], found[field]


# CLIP reads "a" as one token and "{subject}" becomes "ohwx person" (two): this prompt is 312 tokens long
LONG_PROMPT = "{subject} " + "a " * 310


def test_prompts_over_the_token_bound_are_refused_with_their_count(tenant_a: Tenant):
    found = errors(tenant_a, prompt=LONG_PROMPT, negative_prompt="blurry, " * 120)
    assert found["prompt"] == ["This prompt is 312 tokens long; the most is 225."]
    assert found["negative_prompt"] == ["This negative prompt is 240 tokens long; the most is 225."]


def test_prompts_at_the_token_bound_pass(tenant_a: Tenant):
    prompt = "{subject} " + "a " * 223  # 225 tokens (three CLIP windows), far beyond the first 77
    negative = "x " * 225
    with tenant_context(tenant_a.studio):
        clean = render_settings.clean_settings(data={**SETTINGS, "prompt": prompt, "negative_prompt": negative})
    assert clean.prompt == prompt.strip() and clean.negative_prompt == negative.strip()


def test_every_bad_field_is_reported_at_once(tenant_a: Tenant):
    found = errors(tenant_a, prompt="no placeholder", steps=0, guidance=99, images_per_run=100)
    assert set(found) == {"prompt", "steps", "guidance", "images_per_run"}


def test_a_disabled_base_model_gets_the_registrys_message(tenant_a: Tenant, settings):
    settings.ENGINE_ENABLED_MODELS = ["tiny-sd15"]
    found = errors(tenant_a)
    assert found["base_model"] == ["The base model 'sd15-photo' is not available to studios on this platform."]


def test_controlnet_modes_need_the_operators_controlnet(tenant_a: Tenant, settings):
    found = errors(tenant_a, reference_mode="pose", reference_image=image_upload())
    assert "needs a ControlNet model for pose" in found["reference_mode"][0]
    settings.ENGINE_CONTROLNETS = {"pose": "/models/controlnet-openpose"}
    from django.core.files.uploadedfile import SimpleUploadedFile

    person = SimpleUploadedFile("p.jpg", (FACES / "person_a_01.jpg").read_bytes(), content_type="image/jpeg")
    with tenant_context(tenant_a.studio):  # a photo of a person: the engine draws its pose (test_pose_reference.py)
        clean = render_settings.clean_settings(data={**SETTINGS, "reference_mode": "pose", "reference_image": person})
    assert clean.reference_mode == "pose" and clean.reference_upload[:3] == b"\xff\xd8\xff"
    found = errors(tenant_a, reference_mode="canny", reference_image=image_upload())
    assert "ControlNet model for canny" in found["reference_mode"][0]


def test_a_reference_image_needs_a_mode(tenant_a: Tenant):
    found = errors(tenant_a, reference_image=image_upload())
    assert "Choose how the reference image is used" in found["reference_mode"][0]


def test_a_tiny_reference_image_is_refused(tenant_a: Tenant):
    from tests.templates_app.conftest import image_bytes

    found = errors(tenant_a, reference_mode="img2img", reference_image=image_upload("r.png", image_bytes((100, 100))))
    assert found["reference_image"][0].startswith("The reference image can't be used:")


def test_each_render_setting_is_declared_once():
    """render_settings.RENDER_FIELDS is the one list: the designer form and the API's input serializer take
    exactly the inputs clean_settings reads, and RenderSettings holds exactly a version's values."""
    from dataclasses import fields

    from templates_app.forms import TemplateForm
    from templates_app.serializers import RenderSettingsInput

    template_own = {"name", "category", "description", "cover_image", "remove_cover_image", "note"}
    assert set(TemplateForm.base_fields) - template_own == set(render_settings.INPUT_FIELDS)
    assert set(RenderSettingsInput._declared_fields) == set(render_settings.INPUT_FIELDS)
    stored = {f.name for f in fields(render_settings.RenderSettings)} - {"reference_name", "reference_upload"}
    assert stored == set(render_settings.VALUE_FIELDS)
