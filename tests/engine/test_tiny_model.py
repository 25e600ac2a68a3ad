"""The tiny demo model: built offline with the real diffusers/transformers classes, saved in diffusers format and
loaded through the same from_pretrained path as a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.checkpoints import BaseModelSpec, build_tiny_model, spec_from_dict

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tiny_model_builds_once_and_loads_like_a_real_checkpoint(root: Path, family: str) -> None:
    import torch
    from diffusers import DiffusionPipeline

    spec = build_tiny_model(root, family)
    assert spec.is_demo and spec.family == family and spec.native_resolution == 64
    marker = Path(spec.source) / "tiny_model.json"
    built_at = marker.stat().st_mtime_ns
    assert build_tiny_model(root, family) == spec and marker.stat().st_mtime_ns == built_at  # reused

    pipe = DiffusionPipeline.from_pretrained(spec.source)
    assert type(pipe).__name__ == ("StableDiffusionPipeline" if family == "sd15" else "StableDiffusionXLPipeline")
    ids = pipe.tokenizer("photo of ohwx person").input_ids
    assert ids[0] == pipe.tokenizer.bos_token_id and ids[-1] == pipe.tokenizer.eos_token_id
    assert pipe.tokenizer.unk_token_id not in ids[1:-1]  # every byte is spelled, nothing is unknown
    image = pipe(
        "photo of ohwx person", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0)
    ).images[0]
    assert image.size == (64, 64)


def test_spec_from_configuration() -> None:
    spec = spec_from_dict(
        {"name": "sd15-base", "family": "sd15", "source": "org/model", "licence": "CreativeML OpenRAIL-M", "x": 1}
    )
    assert spec.native_resolution == 512 and spec.extra == {"x": 1} and not spec.is_local()
    with pytest.raises(ValueError, match="lacks source"):
        spec_from_dict({"name": "n", "family": "sd15"})
    with pytest.raises(ValueError, match="unknown family"):
        BaseModelSpec(name="n", family="sd3", source="x")  # type: ignore[arg-type]
