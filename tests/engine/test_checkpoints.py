"""The tiny demo models (engine/checkpoints.py): both families build offline, once, in diffusers format;
every component loads through the same ``from_pretrained`` paths as a real checkpoint; the tokenizer spells any
word in bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.checkpoints import TINY_MARKER, BaseModelSpec, build_tiny_model, tiny_spec

pytest.importorskip("diffusers")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One folder per test session: build_tiny_model is idempotent, so every engine test module reuses the build.
    return tmp_path_factory.getbasetemp() / "tiny-models"


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_build_is_idempotent_and_complete(tiny_root: Path, family: str) -> None:
    spec = build_tiny_model(tiny_root, family)
    assert spec == tiny_spec(tiny_root, family)
    assert spec.is_demo and spec.commercial_use and spec.native_resolution == 64 and spec.is_local()
    folder = Path(spec.source)
    marker = folder / TINY_MARKER
    assert json.loads(marker.read_text())["family"] == family
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    assert build_tiny_model(tiny_root, family) == spec
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == stamp  # nothing rewritten
    index = json.loads((folder / "model_index.json").read_text())
    expected = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    if family == "sdxl":
        expected |= {"text_encoder_2", "tokenizer_2"}
    assert expected <= {name for name, value in index.items() if isinstance(value, list) and value[0]}
    assert index["_class_name"] == ("StableDiffusionPipeline" if family == "sd15" else "StableDiffusionXLPipeline")


def test_unfinished_build_is_redone(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "sd15")
    Path(spec.source, "unet").mkdir(parents=True)  # a build killed half-way: no marker
    build_tiny_model(tmp_path, "sd15")
    assert (Path(spec.source) / TINY_MARKER).exists() and (Path(spec.source) / "unet" / "config.json").exists()


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_components_load_with_from_pretrained(tiny_root: Path, family: str) -> None:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    spec = build_tiny_model(tiny_root, family)
    unet = UNet2DConditionModel.from_pretrained(spec.source, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(spec.source, subfolder="vae")
    scheduler = DDPMScheduler.from_pretrained(spec.source, subfolder="scheduler")
    encoder = CLIPTextModel.from_pretrained(spec.source, subfolder="text_encoder")
    assert scheduler.config.prediction_type == "epsilon" and scheduler.config.num_train_timesteps == 1000
    assert vae.config.latent_channels == unet.config.in_channels == 4
    if family == "sd15":
        assert unet.config.cross_attention_dim == encoder.config.hidden_size
        assert unet.config.addition_embed_type is None
    else:
        encoder_2 = CLIPTextModelWithProjection.from_pretrained(spec.source, subfolder="text_encoder_2")
        # SDXL: both encoders' hidden states side by side; pooled embeds + 6 time ids as added conditions.
        assert unet.config.cross_attention_dim == encoder.config.hidden_size + encoder_2.config.hidden_size
        assert unet.config.addition_embed_type == "text_time"
        assert unet.config.projection_class_embeddings_input_dim == (
            encoder_2.config.projection_dim + 6 * unet.config.addition_time_embed_dim
        )


def test_tokenizer_spells_every_word(tiny_root: Path) -> None:
    from transformers import CLIPTokenizer

    spec = build_tiny_model(tiny_root, "sd15")
    tokenizer = CLIPTokenizer.from_pretrained(spec.source, subfolder="tokenizer")
    for text in ("photo of sks person", "portrait of ohwx woman, Zoë, 35mm"):
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.unk_token_id not in ids[1:-1]
        # CLIP splits punctuation and digits into words of their own: compare without the spaces.
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == text.lower().replace(" ", "")
    padded = tokenizer("sks", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert len(padded) == 77


def test_specs_of_real_models_are_checked() -> None:
    spec = BaseModelSpec(name="sdxl", family="sdxl", source="org/sdxl-base")
    assert spec.native_resolution == 1024 and not spec.is_demo and spec.display_name == "sdxl"
    with pytest.raises(ValueError, match="no source"):
        BaseModelSpec(name="x", family="sd15", source="")
