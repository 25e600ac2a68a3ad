"""Fixtures for templates: private storage in a temporary folder, a base-model registry with an SD 1.5 and an
SDXL model besides the tiny demo one, members of each role, and builders of real (and broken) LoRA files."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from templates_app import style_loras, versions
from templates_app.models import StyleLora, Template
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import Tenant, add_member

SD15 = "sd15-photo"
SDXL = "sdxl-photo"
REGISTRY = [
    {"name": SD15, "family": "sd15", "source": "example/sd15-photo", "licence": "test", "commercial_use": True},
    {"name": SDXL, "family": "sdxl", "source": "example/sdxl-photo", "licence": "test", "commercial_use": True},
]


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.fixture(autouse=True)
def registry(settings: Any, tmp_path: Path) -> list[dict[str, Any]]:
    settings.ENGINE_BASE_MODELS = REGISTRY
    settings.ENGINE_ENABLED_MODELS = []
    settings.ENGINE_DEFAULT_MODEL = SD15
    settings.ENGINE_MODELS_DIR = tmp_path / "models"
    settings.ENGINE_CONTROLNETS = {}
    return REGISTRY


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- members --------------------------------------------------------------------------------------------------


@pytest.fixture
def photographer(tenant_a: Tenant) -> Any:
    return add_member(tenant_a, "photographer@studio-a.example", Role.PHOTOGRAPHER)


@pytest.fixture
def staff(tenant_a: Tenant) -> Any:
    return add_member(tenant_a, "staff@studio-a.example", Role.STAFF)


@pytest.fixture
def photographer_client(client: Any, photographer: Any) -> Any:
    client.force_login(photographer)
    return client


@pytest.fixture
def staff_client(client: Any, staff: Any) -> Any:
    client.force_login(staff)
    return client


# --- templates ------------------------------------------------------------------------------------------------

SETTINGS: dict[str, Any] = {
    "prompt": "studio portrait photo of {subject}, soft light, 85mm",
    "negative_prompt": "blurry, watermark",
    "base_model": SD15,
    "scheduler": "dpmpp_2m_karras",
    "steps": 30,
    "guidance": 6.5,
    "identity_weight": 1.0,
    "images_per_run": 4,
    "price_per_image": "12.50",
}


@pytest.fixture
def make_template(tenant_a: Tenant) -> Callable[..., Template]:
    def _make(name: str = "Headshot", tenant: Tenant | None = None, **settings: Any) -> Template:
        owner = tenant or tenant_a
        with tenant_context(owner.studio):
            return versions.create_template(
                name=name, category="business", settings={**SETTINGS, **settings}, user=owner.owner
            )

    return _make


def reload(tenant: Tenant, obj: Any) -> Any:
    with tenant_context(tenant.studio):
        model = type(obj)
        related = ["current_version"] if model is Template else []
        return model.objects.select_related(*related).get(pk=obj.pk)


# --- images ---------------------------------------------------------------------------------------------------


def image_bytes(
    size: tuple[int, int] = (512, 640), fmt: str = "PNG", color: tuple[int, int, int] = (180, 120, 90)
) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 32):  # some structure, so that it is a plausible reference
        image.paste((40, 40, 40), (x, 0, x + 4, size[1]))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def image_upload(name: str = "reference.png", data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data if data is not None else image_bytes(), content_type="image/png")


# --- LoRA files -----------------------------------------------------------------------------------------------

WIDTHS = {"sd15": 768, "sdxl": 2048}
BLOCK = "down_blocks.1.attentions.0.transformer_blocks.0"


def lora_tensors(
    family: str = "sd15", *, rank: int = 4, width: int | None = None, style: str = "diffusers"
) -> dict[str, np.ndarray]:
    """A small LoRA in the diffusers/peft or kohya naming: self-attention q and cross-attention k/v of one block
    (cross-attention down matrices take `width` features), plus a text-encoder layer (the second encoder's for
    SDXL, as SDXL LoRAs have)."""
    width = width or WIDTHS[family]
    tensors: dict[str, np.ndarray] = {}
    projections = (("attn1.to_q", 640), ("attn2.to_k", width), ("attn2.to_v", width))
    te = "text_encoder_2" if family == "sdxl" else "text_encoder"
    te_width = 1280 if family == "sdxl" else 768
    for proj, in_features in projections:
        if style == "diffusers":
            key = f"unet.{BLOCK}.{proj}"
            tensors[f"{key}.lora_A.weight"] = np.full((rank, in_features), 0.01, np.float16)
            tensors[f"{key}.lora_B.weight"] = np.zeros((640, rank), np.float16)
        else:
            key = "lora_unet_" + f"{BLOCK}.{proj}".replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = np.full((rank, in_features), 0.01, np.float16)
            tensors[f"{key}.lora_up.weight"] = np.zeros((640, rank), np.float16)
            tensors[f"{key}.alpha"] = np.array(float(rank), np.float32)
    if style == "diffusers":
        key = f"{te}.text_model.encoder.layers.0.self_attn.q_proj"
        tensors[f"{key}.lora_A.weight"] = np.zeros((rank, te_width), np.float32)
        tensors[f"{key}.lora_B.weight"] = np.zeros((te_width, rank), np.float32)
    else:
        prefix = "lora_te2_" if family == "sdxl" else "lora_te_"
        key = prefix + "text_model_encoder_layers_0_self_attn_q_proj"
        tensors[f"{key}.lora_down.weight"] = np.zeros((rank, te_width), np.float32)
        tensors[f"{key}.lora_up.weight"] = np.zeros((te_width, rank), np.float32)
    return tensors


def lora_bytes(tensors: dict[str, np.ndarray] | None = None, **kwargs: Any) -> bytes:
    from safetensors.numpy import save

    return save(tensors if tensors is not None else lora_tensors(**kwargs), metadata={"format": "pt"})


def raw_safetensors(header: dict[str, Any], data: bytes, *, declared: int | None = None) -> bytes:
    """A safetensors container written by hand (for broken ones): header length, JSON header, data."""
    encoded = json.dumps(header).encode()
    length = len(encoded) if declared is None else declared
    return length.to_bytes(8, "little") + encoded + data


def lora_upload(data: bytes, name: str = "film-look.safetensors") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def style_lora(tenant_a: Tenant) -> Callable[..., StyleLora]:
    def _make(family: str = "sd15", name: str = "Film look", tenant: Tenant | None = None, **kwargs: Any) -> StyleLora:
        owner = tenant or tenant_a
        model = SD15 if family == "sd15" else SDXL
        with tenant_context(owner.studio):
            return style_loras.upload_style_lora(
                upload=io.BytesIO(lora_bytes(family=family, **kwargs)), name=name, base_model=model, user=owner.owner
            )

    return _make
