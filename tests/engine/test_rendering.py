"""Rendering on the tiny model with real diffusers and peft on the CPU: the pipeline cache, identity and style
LoRAs as named adapters (fused, weighted, never leaking between jobs), schedulers, img2img, ControlNet, seeds and
recipes, "more like me" and cancellation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from engine import rendering  # noqa: E402
from engine.checkpoints import BaseModelSpec, build_tiny_model  # noqa: E402
from engine.rendering import (  # noqa: E402
    AdapterRef,
    PipelineCache,
    RenderCancelled,
    RenderConfig,
    can_go_more_like_me,
    config_from_recipe,
    more_like_me,
    render,
)

TRIGGER = "ohwx person"


def make_lora(spec: BaseModelSpec, folder: Path, seed: int, scale: float = 0.3) -> Path:
    """A random identity-style LoRA (peft on the UNet attention projections, non-zero lora_B) saved in the
    standard diffusers format by the pipeline's own save_lora_weights."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
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
    pipeline = StableDiffusionPipeline if spec.family == "sd15" else StableDiffusionXLPipeline
    folder.mkdir(parents=True, exist_ok=True)
    pipeline.save_lora_weights(str(folder), unet_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("render")
    sd15 = build_tiny_model(root / "models", "sd15")
    return {
        "root": root,
        "spec": sd15,
        "lora_a": make_lora(sd15, root / "client-a", seed=1),
        "lora_b": make_lora(sd15, root / "client-b", seed=2),
        "style": make_lora(sd15, root / "style-film", seed=3),
    }


@pytest.fixture(scope="session")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu")


def cfg(**kwargs: Any) -> RenderConfig:
    base: dict[str, Any] = {"prompt": "portrait of {subject}", "steps": 2, "seeds": [7], "width": 64, "height": 64}
    base.update(kwargs)
    return RenderConfig(**base)


def pixels(items: list[rendering.RenderedImage]) -> list[np.ndarray]:
    return [np.asarray(item.image, dtype=np.int16) for item in items]


def no_lora_layers(cache: PipelineCache, spec: BaseModelSpec) -> bool:
    pipe = cache.get(spec)
    return not rendering._tuner_layers(pipe) and not any(pipe.get_list_adapters().values())


def test_cache_loads_once_and_variants_share_the_modules(tmp_path: Path, tiny: dict[str, Any]) -> None:
    own = PipelineCache(device="cpu")
    pipe = own.get(tiny["spec"])
    assert own.get(tiny["spec"]) is pipe
    img2img = own.variant(tiny["spec"], "img2img")
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert img2img.unet is pipe.unet and img2img.vae is pipe.vae and img2img.text_encoder is pipe.text_encoder
    assert own.variant(tiny["spec"], "img2img") is img2img
    stats = own.stats
    assert stats["loads"] == 1 and stats["hits"] == 3 and stats["variant_builds"] == 1 and stats["load_seconds"] > 0
    assert stats["device"] == "cpu" and stats["dtype"] == "float32"
    assert pipe.device.type == "cpu" and pipe.unet.dtype.is_floating_point

    render(cache=own, spec=tiny["spec"], identity_lora=tiny["lora_a"], trigger_phrase=TRIGGER, config=cfg())
    assert own.stats["loads"] == 1  # rendering reused it

    with pytest.raises(ValueError, match="not configured"):
        own.variant(tiny["spec"], "txt2img", controlnet="pose")
    with pytest.raises(ValueError, match="unknown ControlNet"):
        PipelineCache(device="cpu", controlnets={"depth": "/nowhere"})


def test_identity_weight_changes_the_output_and_adapters_never_leak(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    spec = tiny["spec"]

    def go(lora: Any, weight: float = 1.0, **kwargs: Any) -> np.ndarray:
        items = render(
            cache=cache,
            spec=spec,
            identity_lora=lora,
            trigger_phrase=TRIGGER,
            config=cfg(identity_weight=weight, **kwargs),
        )
        assert no_lora_layers(cache, spec)  # cleaned after every render
        return pixels(items)[0]

    base = go(None)
    with_a = go(tiny["lora_a"], 1.0)
    stronger = go(tiny["lora_a"], 1.5)
    assert np.abs(with_a - base).mean() > 1 and np.abs(stronger - with_a).mean() > 0.5
    assert np.array_equal(go(tiny["lora_a"], 0.0), base)  # weight 0 = the base model
    assert np.array_equal(go(None), base)  # client A's adapter left nothing behind (base weights restored exactly)
    assert np.abs(go(tiny["lora_b"]) - with_a).mean() > 1  # client B gets B, not A (+B)
    unfused = go(tiny["lora_a"], 1.0, fuse=False)
    assert np.abs(unfused - with_a).max() <= 2  # fusing changes at most the last bits
    assert np.array_equal(go(None), base)


def test_bytes_input_and_recipe_without_paths(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    import hashlib

    data = tiny["lora_a"].read_bytes()
    from_bytes = render(cache=cache, spec=tiny["spec"], identity_lora=data, trigger_phrase=TRIGGER, config=cfg())
    from_file = render(
        cache=cache, spec=tiny["spec"], identity_lora=tiny["lora_a"], trigger_phrase=TRIGGER, config=cfg()
    )
    from_dir = render(
        cache=cache, spec=tiny["spec"], identity_lora=tiny["lora_a"].parent, trigger_phrase=TRIGGER, config=cfg()
    )
    assert np.array_equal(pixels(from_bytes)[0], pixels(from_file)[0])
    assert np.array_equal(pixels(from_dir)[0], pixels(from_file)[0])
    recipe = from_bytes[0].recipe
    text = json.dumps(recipe)  # JSON-serialisable
    assert str(tiny["root"]) not in text and "client-a" not in text
    assert recipe["adapters"] == [{"name": "identity", "sha256": hashlib.sha256(data).hexdigest(), "weight": 1.0}]
    assert recipe["prompt"] == "portrait of ohwx person" and recipe["prompt_template"] == "portrait of {subject}"
    assert recipe["base_model"] == {"name": "tiny-sd15", "family": "sd15", "is_demo": True}
    assert recipe["engine"]["diffusers"] and recipe["engine"]["torch"] and recipe["fused"] is True
    assert (recipe["seed"], recipe["steps"], recipe["scheduler"], recipe["width"], recipe["img2img"]) == (
        7,
        2,
        "dpmpp_2m_karras",
        64,
        False,
    )

    with pytest.raises(ValueError, match="not a readable safetensors"):
        render(cache=cache, spec=tiny["spec"], identity_lora=b"garbage", trigger_phrase=TRIGGER, config=cfg())
    assert no_lora_layers(cache, tiny["spec"])

    import torch
    from safetensors.torch import load, save

    broken = load(data)
    first_up = next(key for key in broken if "lora" in key and ("up" in key or "lora_B" in key))
    broken[first_up] = torch.full_like(broken[first_up], float("nan"))
    with pytest.raises(ValueError, match="non-finite weights"):
        render(cache=cache, spec=tiny["spec"], identity_lora=save(broken), trigger_phrase=TRIGGER, config=cfg())
    assert no_lora_layers(cache, tiny["spec"])
    again = render(cache=cache, spec=tiny["spec"], identity_lora=data, trigger_phrase=TRIGGER, config=cfg())
    assert np.array_equal(pixels(again)[0], pixels(from_bytes)[0])  # the failed fuse left the weights intact


def test_prompt_placeholder() -> None:
    expected = "photo of ohwx woman, studio light"
    assert rendering.final_prompt("photo of {subject}, studio light", "ohwx woman") == expected
    assert rendering.final_prompt("studio light", "ohwx woman") == "ohwx woman, studio light"
    assert rendering.final_prompt("", "ohwx woman") == "ohwx woman"


@pytest.mark.parametrize("scheduler", sorted(rendering.SCHEDULERS))
def test_each_scheduler_renders_and_reproduces(cache: PipelineCache, tiny: dict[str, Any], scheduler: str) -> None:
    def go(config: RenderConfig) -> list[rendering.RenderedImage]:
        return render(
            cache=cache, spec=tiny["spec"], identity_lora=tiny["lora_a"], trigger_phrase=TRIGGER, config=config
        )

    first = go(cfg(scheduler=scheduler, seeds=[11, 12]))
    assert [item.image.size for item in first] == [(64, 64), (64, 64)]
    assert first[0].recipe["scheduler"] == scheduler and [item.seed for item in first] == [11, 12]
    assert not np.array_equal(*pixels(first))  # different seeds, different images
    again = go(config_from_recipe(json.loads(json.dumps(first[1].recipe))))
    assert np.array_equal(pixels(again)[0], pixels(first)[1])  # the recipe reproduces the pixels exactly
    assert again[0].recipe == first[1].recipe


def test_unknown_scheduler_and_bad_configs(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    def go(**kwargs: Any) -> None:
        render(cache=cache, spec=tiny["spec"], identity_lora=None, trigger_phrase=TRIGGER, config=cfg(**kwargs))

    with pytest.raises(ValueError, match="unknown scheduler 'lms'.*ddim, dpmpp_2m_karras, euler_a"):
        go(scheduler="lms")
    with pytest.raises(ValueError, match="multiples of 8"):
        go(width=60)
    with pytest.raises(ValueError, match="no seeds"):
        go(seeds=[])
    with pytest.raises(ValueError, match="leave no denoising step"):
        go(init_image=Image.new("RGB", (64, 64)), strength=0.2)
    with pytest.raises(ValueError, match="not configured"):
        go(controlnet="canny", control_image=Image.new("RGB", (64, 64)))


def test_batches_progress_and_seeds(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    calls: list[tuple[int, int]] = []
    items = render(
        cache=cache,
        spec=tiny["spec"],
        identity_lora=tiny["lora_a"],
        trigger_phrase=TRIGGER,
        config=cfg(seeds=[1, 2, 3], batch_size=2, steps=3),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert [item.seed for item in items] == [1, 2, 3]
    assert calls == [(n, 6) for n in range(1, 7)]  # 2 batches x 3 steps
    assert [item.recipe["batch_size"] for item in items] == [2, 2, 1]
    single = render(
        cache=cache,
        spec=tiny["spec"],
        identity_lora=tiny["lora_a"],
        trigger_phrase=TRIGGER,
        config=cfg(seeds=[2], steps=3),
    )
    # one generator per image: seed 2 gives the same image in a batch of two as alone (up to float noise)
    assert np.abs(pixels(single)[0] - pixels(items)[1]).max() <= 2


def test_img2img_and_more_like_me(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    reference = Image.new("RGB", (96, 80), (200, 120, 90))
    calls: list[tuple[int, int]] = []

    def go(config: RenderConfig) -> list[rendering.RenderedImage]:
        return render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_a"],
            trigger_phrase=TRIGGER,
            config=config,
            progress=lambda done, total: calls.append((done, total)),
        )

    first = go(cfg(init_image=reference, strength=0.6, steps=5))
    assert calls[-1] == (3, 3)  # int(5 x 0.6) denoising steps
    assert first[0].image.size == (64, 64)
    recipe = first[0].recipe
    assert recipe["img2img"] is True and recipe["mode"] == "img2img" and recipe["strength"] == 0.6
    assert recipe["init_image_sha256"]

    closer = more_like_me(recipe)
    assert closer["identity_weight"] == 1.15 and closer["adapters"][0]["weight"] == 1.15
    assert closer["strength"] == 0.5 and closer["seed"] == recipe["seed"] and closer["more_like_me_step"] == 1
    assert recipe["identity_weight"] == 1.0  # the input is not changed
    with pytest.raises(ValueError, match="reference image"):
        config_from_recipe(closer)
    with pytest.raises(ValueError, match="not the reference image"):
        config_from_recipe(closer, init_image=Image.new("RGB", (64, 64)))
    config = config_from_recipe(closer, init_image=reference)
    assert config.identity_weight == 1.15 and config.strength == 0.5 and config.seeds == [recipe["seed"]]
    second = go(config)
    assert second[0].recipe["identity_weight"] == 1.15 and second[0].recipe["strength"] == 0.5
    assert not np.array_equal(pixels(second)[0], pixels(first)[0])

    # steps to the cap and the floor, then no more
    current = recipe
    for _ in range(10):
        current = more_like_me(current)
    assert current["identity_weight"] == 1.6 and current["strength"] == 0.3
    assert not can_go_more_like_me(current) and more_like_me(current) == current
    assert can_go_more_like_me(recipe)


def test_more_like_me_caps_txt2img(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    recipe = render(
        cache=cache,
        spec=tiny["spec"],
        identity_lora=tiny["lora_a"],
        trigger_phrase=TRIGGER,
        config=cfg(identity_weight=1.5),
    )[0].recipe
    up = more_like_me(recipe)
    assert up["identity_weight"] == 1.6 and up["strength"] is None and up["more_like_me_step"] == 1
    assert more_like_me(up) == up and not can_go_more_like_me(up)
    assert more_like_me(recipe, step=0.05)["identity_weight"] == 1.55
    base = render(cache=cache, spec=tiny["spec"], identity_lora=None, trigger_phrase=TRIGGER, config=cfg())[0]
    with pytest.raises(ValueError, match="without a digital double"):
        more_like_me(base.recipe)
    assert not can_go_more_like_me(base.recipe)


def test_recipe_checks_the_identity_lora(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    recipe = render(cache=cache, spec=tiny["spec"], identity_lora=tiny["lora_a"], trigger_phrase=TRIGGER, config=cfg())[
        0
    ].recipe
    with pytest.raises(ValueError, match="not the one the recipe was rendered with"):
        render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_b"],
            trigger_phrase=TRIGGER,
            config=config_from_recipe(recipe),
        )


def test_style_and_identity_weighted_together(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    def go(style: AdapterRef | None, weight: float = 0.8) -> list[rendering.RenderedImage]:
        return render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_a"],
            trigger_phrase=TRIGGER,
            config=cfg(identity_weight=weight, style_lora=style),
        )

    alone = go(None)
    styled = go(AdapterRef(path=tiny["style"], weight=0.5))
    assert np.abs(pixels(styled)[0] - pixels(alone)[0]).mean() > 0.5
    adapters = styled[0].recipe["adapters"]
    assert [(item["name"], item["weight"]) for item in adapters] == [("identity", 0.8), ("style", 0.5)]
    assert adapters[1]["label"] == "style-film" and len(adapters[1]["sha256"]) == 64
    assert no_lora_layers(cache, tiny["spec"])
    config = config_from_recipe(styled[0].recipe)
    assert config.style_lora is not None and config.style_lora.weight == 0.5
    again = render(cache=cache, spec=tiny["spec"], identity_lora=tiny["lora_a"], trigger_phrase=TRIGGER, config=config)
    assert np.array_equal(pixels(again)[0], pixels(styled)[0])
    with pytest.raises(ValueError, match="changed since the recipe"):
        render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_a"],
            trigger_phrase=TRIGGER,
            config=config_from_recipe(styled[0].recipe, style_path=tiny["lora_b"]),
        )


def test_cancel_mid_render_cleans_up(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    steps: list[int] = []
    with pytest.raises(RenderCancelled):
        render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_a"],
            trigger_phrase=TRIGGER,
            config=cfg(steps=4, seeds=[1, 2]),
            progress=lambda done, total: steps.append(done),
            should_cancel=lambda: len(steps) >= 2,
        )
    assert steps == [1, 2]  # stopped at the second step, not at the end
    assert no_lora_layers(cache, tiny["spec"])
    with pytest.raises(RenderCancelled):
        render(
            cache=cache,
            spec=tiny["spec"],
            identity_lora=tiny["lora_a"],
            trigger_phrase=TRIGGER,
            config=cfg(),
            should_cancel=lambda: True,
        )


def test_a_lora_of_another_family_is_refused_cleanly(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    sdxl = build_tiny_model(tiny["root"] / "models", "sdxl")
    xl_lora = make_lora(sdxl, tiny["root"] / "client-xl", seed=4)
    with pytest.raises(ValueError, match="does not fit base model 'tiny-sd15'"):
        render(cache=cache, spec=tiny["spec"], identity_lora=xl_lora, trigger_phrase=TRIGGER, config=cfg())
    assert no_lora_layers(cache, tiny["spec"])


def test_sdxl_tiny_renders_with_a_lora(cache: PipelineCache, tiny: dict[str, Any]) -> None:
    sdxl = build_tiny_model(tiny["root"] / "models", "sdxl")
    lora = make_lora(sdxl, tiny["root"] / "client-xl", seed=4)

    def go(weight: float, **kwargs: Any) -> list[rendering.RenderedImage]:
        return render(
            cache=cache,
            spec=sdxl,
            identity_lora=lora,
            trigger_phrase=TRIGGER,
            config=cfg(identity_weight=weight, scheduler="euler_a", **kwargs),
        )

    zero, one = go(0.0), go(1.0)
    assert one[0].image.size == (64, 64) and one[0].recipe["base_model"]["family"] == "sdxl"
    assert np.abs(pixels(one)[0] - pixels(zero)[0]).mean() > 1
    assert no_lora_layers(cache, sdxl)
    img2img = go(1.0, init_image=Image.new("RGB", (64, 64), (90, 90, 90)), strength=0.5, steps=4)
    assert img2img[0].recipe["img2img"] and type(cache.variant(sdxl, "img2img")).__name__.startswith(
        "StableDiffusionXL"
    )


def test_controlnet_canny(tiny: dict[str, Any]) -> None:
    from diffusers import ControlNetModel, UNet2DConditionModel

    folder = tiny["root"] / "controlnet-canny"
    if not folder.exists():
        unet = UNet2DConditionModel.from_pretrained(tiny["spec"].source, subfolder="unet")
        ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16)).save_pretrained(str(folder))
    own = PipelineCache(device="cpu", controlnets={"canny": str(folder)})
    photo = Image.new("RGB", (64, 64), (30, 30, 30))
    photo.paste((220, 220, 220), (16, 16, 48, 48))
    edges = rendering.edge_map(photo)
    assert np.asarray(edges)[32, 16].max() == 255 and np.asarray(edges)[32, 32].max() == 0

    items = render(
        cache=own,
        spec=tiny["spec"],
        identity_lora=tiny["lora_a"],
        trigger_phrase=TRIGGER,
        config=cfg(controlnet="canny", control_image=photo),
    )
    recipe = items[0].recipe
    assert recipe["controlnet"] == "canny" and recipe["control_image_sha256"] and not recipe["img2img"]
    assert type(own.variant(tiny["spec"], "txt2img", "canny")).__name__ == "StableDiffusionControlNetPipeline"
    assert own.stats["controlnet_loads"] == 1 and own.stats["loads"] == 1
    with pytest.raises(ValueError, match="give its control image back"):
        config_from_recipe(recipe)
    again = render(
        cache=own,
        spec=tiny["spec"],
        identity_lora=tiny["lora_a"],
        trigger_phrase=TRIGGER,
        config=config_from_recipe(recipe, control_image=photo),
    )
    assert np.array_equal(pixels(again)[0], pixels(items)[0])
