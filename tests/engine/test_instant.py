"""Instant portraits (engine/instant.py, issue 17) on the tiny model with real diffusers, transformers and dlib on the
CPU, through diffusers' own IP-Adapter loading: a tiny CLIP image encoder saved with save_pretrained and an
IP-Adapter state dict in the safetensors layout load_ip_adapter reads ("image_proj." and "ip_adapter." keys), both
built with random weights by engine.checkpoints.build_tiny_ip_adapter. The portrait is conditioned on the photo's
face, marked instant, carries no identity LoRA, and the cached pipeline is the same afterwards (a plain render gives
the same pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from engine import identity_adapters, instant, rendering  # noqa: E402
from engine.checkpoints import build_tiny_ip_adapter, build_tiny_model  # noqa: E402
from engine.rendering import PipelineCache, RenderConfig  # noqa: E402
from tests.face_fixtures import FACES  # noqa: E402

pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("instant")
    spec = build_tiny_model(root / "models", "sd15")
    files = build_tiny_ip_adapter(spec, root / "ip-adapter")
    adapter = identity_adapters.enable({"key": "ip-adapter-sd15", **files})
    return {"spec": spec, "adapter": adapter}


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu")


def cfg(**kwargs: Any) -> RenderConfig:
    return RenderConfig(
        **{"prompt": "studio portrait of {subject}", "steps": 2, "seeds": [3], "width": 64, "height": 64, **kwargs}
    )


def photo(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


def test_an_instant_portrait_is_conditioned_on_the_photos_face_and_leaves_the_pipeline_as_it_was(
    tiny: dict[str, Any], cache: PipelineCache
) -> None:
    plain_before = rendering.render(
        cache=cache, spec=tiny["spec"], identity_lora=None, trigger_phrase="", config=cfg()
    )[0].image
    anna = instant.render_instant(
        cache=cache, spec=tiny["spec"], adapter=tiny["adapter"], photos=[photo("person_a_01.jpg")], config=cfg()
    )
    assert len(anna) == 1 and anna[0].image.size == (64, 64)
    recipe = anna[0].recipe
    assert recipe["instant"] is True and recipe["adapters"] == [] and recipe["identity_weight"] is None
    assert recipe["identity_image"]["adapter"] == "ip-adapter-sd15" and recipe["identity_image"]["scale"] == 0.7
    assert recipe["identity_image"]["licence"].startswith("Apache-2.0")
    assert recipe["prompt"] == "studio portrait of a person"
    assert "person_a" not in str(recipe)  # no path or file name of the client's photo

    # Another face, same seed and prompt: another image (the adapter does condition the render).
    bruno = instant.render_instant(
        cache=cache, spec=tiny["spec"], adapter=tiny["adapter"], photos=[photo("person_b_02.jpg")], config=cfg()
    )
    assert bruno[0].recipe["identity_image"]["image_sha256"] != recipe["identity_image"]["image_sha256"]
    assert not np.array_equal(np.asarray(bruno[0].image), np.asarray(anna[0].image))
    assert not np.array_equal(np.asarray(anna[0].image), np.asarray(plain_before))
    assert cache.stats["encoder_loads"] == 1  # the image encoder stays loaded in the worker's cache

    # The cached pipeline afterwards: no image encoder, its own attention processors, the same pixels as before.
    pipe = cache.variant(tiny["spec"])
    assert getattr(pipe, "image_encoder", None) is None
    plain_after = rendering.render(cache=cache, spec=tiny["spec"], identity_lora=None, trigger_phrase="", config=cfg())[
        0
    ].image
    assert np.array_equal(np.asarray(plain_after), np.asarray(plain_before))


def test_the_largest_face_of_the_photos_is_used_and_no_face_is_refused(
    tiny: dict[str, Any], cache: PipelineCache
) -> None:
    small = photo("person_a_07_small.jpg")
    large = photo("person_a_01.jpg")
    crop = instant.face_crop([small, large])
    assert crop.width == crop.height and crop.width > 100
    blank = Image.new("RGB", (200, 200), (120, 120, 120))
    with pytest.raises(ValueError, match="None of the photos shows a face"):
        instant.render_instant(cache=cache, spec=tiny["spec"], adapter=tiny["adapter"], photos=[blank], config=cfg())


def test_an_adapter_for_another_family_is_refused(tiny: dict[str, Any], cache: PipelineCache) -> None:
    sdxl = identity_adapters.enable(
        {"key": "ip-adapter-plus-face-sdxl", "source": "x", "weight_name": "y.safetensors", "image_encoder": "z"}
    )
    with pytest.raises(ValueError, match="is for sdxl models"):
        instant.render_instant(
            cache=cache, spec=tiny["spec"], adapter=sdxl, photos=[photo("person_a_01.jpg")], config=cfg()
        )
