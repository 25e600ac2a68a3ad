"""Helpers of the render run tests: the tiny demo model and real (random) LoRAs made with peft, a READY double with
its encrypted identity LoRA, templates and their versions, running a run's jobs through the job runner.

Import the fixtures `tiny_engine_fixture` and `run_settings_fixture` into a test module to use the fixtures
`tiny_engine` and `run_settings`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from generation import crypto
from generation.models import DigitalDouble, RenderRun
from jobs.models import Job
from jobs.tasks import run_job
from templates_app.models import StyleLora, Template, TemplateVersion
from tenants.context import tenant_context
from tests.conftest import Tenant

SECOND_TINY = "tiny-sd15-b"  # the tiny model's weights under a second name: a second base model of the same family


def make_lora_bytes(spec: Any, folder: Path, seed: int, scale: float = 0.3) -> bytes:
    """A random LoRA on the UNet attention projections (non-zero lora_B), saved in the standard diffusers format
    by the pipeline's own save_lora_weights (as tests/engine/test_rendering.py makes them)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(spec.source, subfolder="unet")
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers)
    return (folder / "pytorch_lora_weights.safetensors").read_bytes()


@pytest.fixture(scope="session", name="tiny_engine")
def tiny_engine_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny model (built once per session) and two LoRAs for it: an identity and a style."""
    from engine.checkpoints import build_tiny_model

    root = tmp_path_factory.mktemp("runs-engine")
    spec = build_tiny_model(root / "models", "sd15")
    return {
        "models_dir": root / "models",
        "spec": spec,
        "identity": make_lora_bytes(spec, root / "identity", seed=1),
        "style": make_lora_bytes(spec, root / "style", seed=3),
    }


@pytest.fixture(name="run_settings")
def run_settings_fixture(settings: Any, tmp_path: Path, tiny_engine: dict[str, Any]) -> Path:
    """Private storage in a temporary folder, the tiny model on the CPU, a second tiny base model."""
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.ENGINE_MODELS_DIR = tiny_engine["models_dir"]
    settings.ENGINE_WORK_DIR = tmp_path / "engine-work"
    settings.ENGINE_DEVICE = "cpu"
    settings.ENGINE_BASE_MODELS = [
        {
            "name": SECOND_TINY,
            "family": "sd15",
            "source": str(tiny_engine["spec"].source),
            "resolution": 64,
            "is_demo": True,
            "label": "Second demo model",
            "licence": "Random weights",
            "commercial_use": True,
        }
    ]
    settings.ENGINE_ENABLED_MODELS = []
    settings.ENGINE_DEFAULT_MODEL = "tiny-sd15"
    settings.ENGINE_CONTROLNETS = {}
    settings.DOUBLE_ENCRYPTION_KEYS = []
    return root


def ready_double(tenant: Tenant, tiny_engine: dict[str, Any], *, sample: bool = False, name: str = "") -> DigitalDouble:
    """A READY double on the tiny model with a real identity LoRA (encrypted at rest) and no centroid."""
    from tests.clients.factories import make_client

    with tenant_context(tenant.studio):
        client = make_client(tenant)
        if name:
            client.name = name
            client.save(update_fields=["name"])
        double = DigitalDouble(
            client=client,
            base_model="tiny-sd15",
            family="sd15",
            is_demo=True,
            trigger="ohwx",
            class_word=DigitalDouble.ClassWord.PERSON,
            status=DigitalDouble.Status.READY,
            is_test_subject=sample,
            created_by=tenant.owner,
        )
        double.lora_file.save("double.bin", ContentFile(crypto.encrypt(tiny_engine["identity"])), save=False)
        double.save()
        return double


def style_lora(tenant: Tenant, data: bytes, *, name: str = "Film look") -> StyleLora:
    with tenant_context(tenant.studio):
        lora = StyleLora(
            name=name, family="sd15", sha256=hashlib.sha256(data).hexdigest(), size=len(data), created_by=tenant.owner
        )
        lora.file.save("style.safetensors", ContentFile(data), save=False)
        lora.save()
        return lora


VERSION_DEFAULTS: dict[str, Any] = {
    "prompt": "studio portrait of {subject}, soft light",
    "negative_prompt": "blurry",
    "base_model": "tiny-sd15",
    "scheduler": "euler_a",
    "steps": 2,
    "guidance": 5.0,
    "width": 64,
    "height": 64,
    "identity_weight": 0.9,
    "images_per_run": 2,
}


def make_template(
    tenant: Tenant, name: str, *, published: bool = True, **version_fields: Any
) -> tuple[Template, TemplateVersion]:
    """A template with its version 1 (the tests' defaults: 2 steps, 64 px, 2 images per run)."""
    with tenant_context(tenant.studio):
        template = Template.objects.create(name=name, created_by=tenant.owner)
        version = TemplateVersion.objects.create(
            template=template, number=1, created_by=tenant.owner, **{**VERSION_DEFAULTS, **version_fields}
        )
        template.current_version = version
        template.status = Template.Status.PUBLISHED if published else Template.Status.DRAFT
        template.save(update_fields=["current_version", "status"])
        return template, version


def new_version(tenant: Tenant, template: Template, **changes: Any) -> TemplateVersion:
    """The template's next version: the current one's settings with `changes`, made current."""
    with tenant_context(tenant.studio):
        template = Template.objects.get(pk=template.pk)
        current = template.current_version
        fields = {
            name: getattr(current, name)
            for name in (*VERSION_DEFAULTS, "style_lora", "style_weight", "reference_mode", "strength")
        }
        version = TemplateVersion.objects.create(
            template=template, number=current.number + 1, created_by=tenant.owner, **{**fields, **changes}
        )
        template.current_version = version
        template.save(update_fields=["current_version"])
        return version


def run_jobs(tenant: Tenant, run: RenderRun) -> list[str]:
    """Run the run's item jobs through the job runner, in enqueue order; returns their outcomes."""
    with tenant_context(tenant.studio):
        job_ids = list(run.items.order_by("position").values_list("job_id", flat=True))
    return [run_job(job_id, tenant.studio.pk) for job_id in job_ids]


def reload(tenant: Tenant, obj: Any) -> Any:
    with tenant_context(tenant.studio):
        return type(obj).objects.get(pk=obj.pk)


def job_of(tenant: Tenant, job_id: int) -> Job:
    with tenant_context(tenant.studio):
        return Job.objects.get(pk=job_id)


def start_test_render_job(double: DigitalDouble, config: dict[str, Any], user: Any = None) -> Job:
    """A test render of the double's page (a one-item run of an unsaved template version), returning its job.
    Runs in the double's studio's tenant context."""
    from generation import runs

    run = runs.start_test_render(double=double, config=config, user=user)
    return run.items.get().job
