"""Factories of templates_app's tenant-owned models (registered in tests/factories.FACTORIES, which imports this
module)."""

from __future__ import annotations

from typing import Any

from django.db import models

from tests.registry import factory, unique


@factory("templates_app.StyleLora")
def make_style_lora(tenant: Any) -> models.Model:
    from django.core.files.base import ContentFile

    from templates_app.models import StyleLora

    lora = StyleLora(
        name=unique("style"),
        family="sd15",
        base_model="tiny-sd15",
        sha256="0" * 64,
        size=4,
        tensors=0,
        created_by=tenant.owner,
    )
    lora.file.save("style.safetensors", ContentFile(b"test"), save=False)
    lora.save()
    return lora


@factory("templates_app.Template")
def make_template(tenant: Any) -> models.Model:
    from templates_app.models import Template, TemplateVersion

    template = Template.objects.create(name=unique("Template"), created_by=tenant.owner)
    version = TemplateVersion.objects.create(
        template=template, number=1, prompt="studio portrait of {subject}", base_model="tiny-sd15"
    )
    template.current_version = version
    template.status = Template.Status.PUBLISHED
    template.save(update_fields=["current_version", "status"])
    return template


@factory("templates_app.TemplateVersion")
def make_template_version(tenant: Any) -> models.Model:
    from templates_app.models import Template

    template = make_template(tenant)
    assert isinstance(template, Template)
    return template.current_version
