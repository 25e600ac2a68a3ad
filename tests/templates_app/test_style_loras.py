"""Style LoRA actions (templates_app/style_loras.py): upload of a checked file, the same file twice, and no
deletion while a template version uses it."""

from __future__ import annotations

import io

import pytest

from templates_app import errors, style_loras
from templates_app.models import StyleLora
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.templates_app.conftest import SDXL, lora_bytes, reload

pytestmark = pytest.mark.django_db


def test_upload_style_lora_stores_a_checked_file(tenant_a: Tenant, private_storage):
    data = lora_bytes(family="sdxl", rank=16)
    with tenant_context(tenant_a.studio):
        lora = style_loras.upload_style_lora(upload=io.BytesIO(data), name="", base_model=SDXL, user=tenant_a.owner)
    assert (lora.family, lora.rank, lora.size, lora.base_model) == ("sdxl", 16, len(data), SDXL)
    assert lora.name == "Style LoRA"
    assert (private_storage / lora.file.name).read_bytes() == data


def test_the_same_lora_twice_is_a_409(tenant_a: Tenant, style_lora):
    style_lora()
    with pytest.raises(errors.TemplateError) as caught:
        style_lora(name="Again")
    assert caught.value.status == 409 and "already in your style LoRAs" in caught.value.message


def test_a_style_lora_in_use_cannot_be_deleted(
    tenant_a: Tenant, make_template, style_lora, private_storage, django_capture_on_commit_callbacks
):
    used, unused = style_lora(name="Used"), style_lora(name="Unused", rank=8)
    template = make_template(style_lora=used.pk)
    with tenant_context(tenant_a.studio):
        with pytest.raises(errors.TemplateError) as caught:
            style_loras.delete_style_lora(lora=used)
        assert caught.value.status == 409 and "Headshot" in caught.value.message
        path = private_storage / unused.file.name
        with django_capture_on_commit_callbacks(execute=True):
            style_loras.delete_style_lora(lora=unused)
    assert reload(tenant_a, template).current_version.style_lora_id == used.pk
    with tenant_context(tenant_a.studio):
        assert list(StyleLora.objects.values_list("name", flat=True)) == ["Used"]
    assert not path.exists()
