"""Base models: what a studio may render with, where its weights are, and the tiny demo model.

Plain Python (no Django). A :class:`BaseModelSpec` names a Stable Diffusion checkpoint in diffusers format by a
local folder or a hub id, with its family (SD 1.5 or SDXL), native resolution and licence. The Django side
builds the registry from settings (`ENGINE_BASE_MODELS`) and decides which models studios may use; the engine
only loads what it is given.

The tiny model
--------------
The demo and the tests need a model without downloading anything. :func:`build_tiny_model` builds one offline:
the real diffusers and transformers classes (``UNet2DConditionModel``, ``AutoencoderKL``, ``CLIPTextModel``
[+ ``CLIPTextModelWithProjection`` for SDXL], ``CLIPTokenizer``, a ``DDPMScheduler`` config), randomly
initialised at small sizes with a fixed seed, saved with ``save_pretrained`` in diffusers format, so it is
loaded through exactly the same ``from_pretrained`` path as a real checkpoint. Its images are noise; the UI
says "demo model" wherever they appear (:attr:`BaseModelSpec.is_demo`).

The tokenizer is a real CLIP byte-level BPE tokenizer with a minimal vocabulary (the 256 byte symbols, each also
as a word end, and the two special tokens) and no merges: every word is spelled in bytes, which is all a random
text encoder needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.prompts import bytes_to_unicode

Family = Literal["sd15", "sdxl"]

FAMILY_RESOLUTION: dict[str, int] = {"sd15": 512, "sdxl": 1024}
TINY_SD15 = "tiny-sd15"
TINY_SDXL = "tiny-sdxl"
TINY_RESOLUTION = 64
TINY_MARKER = "tiny_model.json"


@dataclass(frozen=True)
class BaseModelSpec:
    """One base model: `source` is a local diffusers folder or a hub id (``org/name``)."""

    name: str
    family: Family
    source: str
    resolution: int | None = None
    licence: str = ""
    commercial_use: bool = False
    label: str = ""
    is_demo: bool = False
    variant: str | None = None  # e.g. "fp16" weights files on the hub
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILY_RESOLUTION:
            raise ValueError(f"base model {self.name!r}: unknown family {self.family!r} (sd15 or sdxl)")
        if not self.source:
            raise ValueError(f"base model {self.name!r}: no source (a local folder or a hub id)")

    @property
    def native_resolution(self) -> int:
        return self.resolution or FAMILY_RESOLUTION[self.family]

    @property
    def display_name(self) -> str:
        return self.label or self.name

    def is_local(self) -> bool:
        return Path(self.source).expanduser().exists()


def spec_from_dict(data: dict[str, Any]) -> BaseModelSpec:
    """A spec from configuration (JSON from the environment). Unknown keys go to `extra`."""
    known = {"name", "family", "source", "resolution", "licence", "commercial_use", "label", "is_demo", "variant"}
    missing = [key for key in ("name", "family", "source") if not data.get(key)]
    if missing:
        raise ValueError(f"base model entry {data!r} lacks {', '.join(missing)}")
    kwargs = {key: value for key, value in data.items() if key in known}
    extra = {key: value for key, value in data.items() if key not in known}
    return BaseModelSpec(**kwargs, extra=extra)


def tiny_spec(root: str | os.PathLike[str], family: Family = "sd15") -> BaseModelSpec:
    """The spec of the tiny demo model of `family`, stored under `root` (built on first use)."""
    name = TINY_SD15 if family == "sd15" else TINY_SDXL
    return BaseModelSpec(
        name=name,
        family=family,
        source=str(Path(root) / name),
        resolution=TINY_RESOLUTION,
        licence="Random weights built by the project (no licence restrictions)",
        commercial_use=True,
        label=f"Demo model ({'SD 1.5' if family == 'sd15' else 'SDXL'} architecture, random weights)",
        is_demo=True,
    )


# --- the tiny model ---------------------------------------------------------------------------------------------


def _write_tokenizer(folder: Path, max_length: int = 77) -> None:
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    try:  # transformers 5: the tokenizers-backed class takes the vocabulary itself
        tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length, pad_token="<|endoftext|>")
    except TypeError:  # transformers 4: files
        tokenizer = CLIPTokenizer(
            vocab_file=str(folder / "vocab.json"),
            merges_file=str(folder / "merges.txt"),
            model_max_length=max_length,
            pad_token="<|endoftext|>",
        )
    tokenizer.save_pretrained(str(folder))


def _text_config(vocab_size: int, *, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=projection or 32,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_act="quick_gelu",
    )


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_RESOLUTION,
    )


def build_tiny_model(root: str | os.PathLike[str], family: Family = "sd15", *, seed: int = 0) -> BaseModelSpec:
    """Build (once) the tiny model of `family` under `root` and return its spec. Idempotent: an existing,
    complete build is reused (a marker file is written last)."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    spec = tiny_spec(root, family)
    folder = Path(spec.source)
    if (folder / TINY_MARKER).exists():
        return spec
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    _write_tokenizer(folder / "tokenizer")
    vocab_size = 2 * 256 + 2
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
    scheduler.save_pretrained(str(folder / "scheduler"))
    _vae().save_pretrained(str(folder / "vae"))

    unet_kwargs: dict[str, Any] = {
        "sample_size": TINY_RESOLUTION // 4,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (32, 64),
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 8,
    }
    if family == "sd15":
        CLIPTextModel(_text_config(vocab_size)).save_pretrained(str(folder / "text_encoder"))
        UNet2DConditionModel(cross_attention_dim=32, **unet_kwargs).save_pretrained(str(folder / "unet"))
        index = {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": _diffusers_version(),
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", "DDPMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
    else:
        _write_tokenizer(folder / "tokenizer_2")
        CLIPTextModel(_text_config(vocab_size)).save_pretrained(str(folder / "text_encoder"))
        CLIPTextModelWithProjection(_text_config(vocab_size, projection=32)).save_pretrained(
            str(folder / "text_encoder_2")
        )
        UNet2DConditionModel(
            cross_attention_dim=64,  # the two encoders' hidden states side by side
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=32 + 6 * 8,
            transformer_layers_per_block=1,
            **unet_kwargs,
        ).save_pretrained(str(folder / "unet"))
        index = {
            "_class_name": "StableDiffusionXLPipeline",
            "_diffusers_version": _diffusers_version(),
            "feature_extractor": [None, None],
            "force_zeros_for_empty_prompt": True,
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "DDPMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    (folder / TINY_MARKER).write_text(json.dumps({"family": family, "seed": seed}), encoding="utf-8")
    return spec


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


#: The tiny IP-Adapter's CLIP image encoder (tests and the CPU benchmark); bench/render.py passes ViT-H's sizes
#: for a real-size measurement.
TINY_IMAGE_ENCODER = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 32,
}


def build_tiny_ip_adapter(
    spec: BaseModelSpec, folder: str | os.PathLike[str], *, encoder: dict[str, int] | None = None, seed: int = 0
) -> dict[str, str]:
    """An IP-Adapter for `spec`'s UNet with random weights (the plain ImageProjection kind: 4 image tokens) and its
    CLIP image encoder, written in the hub's layout: ``image_encoder/`` (save_pretrained) and a ``.safetensors``
    file with ``image_proj.`` and ``ip_adapter.`` keys, as diffusers' ``load_ip_adapter`` reads them. Returns the
    configuration engine.identity_adapters.enable takes (source, weight_name, image_encoder)."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    sizes = {**TINY_IMAGE_ENCODER, **(encoder or {})}
    projection = sizes["projection_dim"]
    CLIPVisionModelWithProjection(CLIPVisionConfig(**sizes)).save_pretrained(folder / "image_encoder")
    unet = UNet2DConditionModel.from_pretrained(spec.source, subfolder="unet")
    cross = unet.config.cross_attention_dim
    tensors = {
        "image_proj.proj.weight": torch.randn(cross * 4, projection) * 0.2,
        "image_proj.proj.bias": torch.zeros(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1  # diffusers numbers the cross-attention processors 1, 3, 5, ... in attn_processors' order
    channels = list(unet.config.block_out_channels)
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.5
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.5
        key_id += 2
    save_file(tensors, str(folder / "ip-adapter_tiny.safetensors"))
    return {
        "source": str(folder),
        "weight_name": "ip-adapter_tiny.safetensors",
        "image_encoder": str(folder / "image_encoder"),
    }
