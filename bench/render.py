"""Rendering benchmark: the engine's `rendering.render` against a plain diffusers loop, in one run.

Both render the same model with the same identity LoRA (peft, rank 16 on the UNet attention projections, random
non-zero weights, saved by diffusers' own save_lora_weights and handed over as bytes as the worker does), the same
prompt, scheduler (DPM++ 2M Karras), steps, guidance, size and seeds, one CPU generator per image:

- the engine: a warm :class:`PipelineCache`, ``render(...)`` (adapters loaded, weighted, fused, then unfused,
  restored and unloaded; recipes; progress and cancellation callbacks);
- the baseline, written here: its own pipeline loaded with ``from_pretrained`` (same dtype, same device), then per
  run ``load_lora_weights(state_dict)``, ``set_adapters``, ``fuse_lora``, a fresh scheduler, one pipeline call per
  batch, ``unfuse_lora``, ``unload_lora_weights`` — what a hand-written diffusers script does.

Runs alternate (engine, baseline, engine, ...) after one warm-up each; the medians give the ratio (target at most
1.05). The first runs of both are compared pixel for pixel. The pipeline cache's cold load (``from_pretrained`` +
move to the device) and warm lookup are timed on a fresh cache. The explicit-content check that the render jobs
run on every output (``safety.check_safety``, on the CPU) is timed on the engine's images, per image and as a
share of an image's render time.

    python bench/render.py                          # tiny SD 1.5 model on the CPU (about a minute on 2 cores)
    python bench/render.py --family sdxl --images 2
    python bench/render.py --real-size --family both  # SD 1.5 @512 and SDXL @1024, real architectures with random
                                                      # weights (nothing downloaded), CUDA when present

**A run's throughput per stage** (``run`` line): ``--images`` portraits through the base render, the face pass
and the upscale in one ``render_portraits`` call (the face crops of all portraits in one render call, then all
their tiles: see engine/portrait.py, "Batching") against the same portraits rendered one call each (each
portrait's faces and tiles on their own, as before the batching), in the same run: images per second of each
stage (from the recipes' stage seconds) and of the whole run, and the ratio.

`--real-size` needs CUDA (it stops at once without it: SD-sized renders and 3000 px upscales on a CPU take hours)
and builds the real UNet, VAE and CLIP text encoder architectures (configs from bench/gpu_sizes.py) with
random weights, saves them in diffusers format (bf16 on CUDA) in a temporary folder and loads them through the
same from_pretrained path as a real checkpoint; it reports images per second. Prints one line per family, then
one summary line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PROMPT = "studio portrait of {subject}, soft light, 85mm"
NEGATIVE = "blurry, deformed"
TRIGGER = "ohwx person"


def build_real_size(root: Path, family: str, device: Any, dtype: Any) -> Any:
    """A diffusers folder with the real architecture of `family` and random weights (tokenizer, scheduler and
    model index from the tiny model of the same family)."""
    import shutil

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from gpu_sizes import SD15_UNET, SDXL_UNET, VAE, clip_config
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from engine.checkpoints import BaseModelSpec, build_tiny_model

    tiny = build_tiny_model(root / "tiny", family)
    folder = root / f"real-{family}"
    shutil.copytree(tiny.source, folder, ignore=shutil.ignore_patterns("unet", "vae", "text_encoder*"))
    resolution = 512 if family == "sd15" else 1024
    torch.manual_seed(0)

    def encoder(cls: Any, hidden: int, layers: int, heads: int, projection: int) -> Any:
        config = clip_config(hidden, layers, heads, projection)
        config.bos_token_id, config.eos_token_id, config.pad_token_id = 512, 513, 513  # the tiny tokenizer's
        return cls(config)

    with torch.device(device):  # random init on the GPU is quick
        parts: dict[str, Any] = {
            "unet": UNet2DConditionModel(**(SD15_UNET if family == "sd15" else SDXL_UNET)),
            "vae": AutoencoderKL(
                **VAE, sample_size=resolution, scaling_factor=0.18215 if family == "sd15" else 0.13025
            ),
            "text_encoder": encoder(CLIPTextModel, 768, 12, 12, 768),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = encoder(CLIPTextModelWithProjection, 1280, 32, 20, 1280)
    for name, module in parts.items():
        module.to(dtype).save_pretrained(str(folder / name))
    del parts
    return BaseModelSpec(name=f"real-{family}", family=family, source=str(folder), resolution=resolution)


def make_lora(spec: Any, folder: Path, rank: int = 16) -> bytes:
    """A random LoRA for `spec` (peft on the UNet attention projections), saved by save_lora_weights → bytes."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(spec.source, subfolder="unet")
    unet.add_adapter(
        LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]
        )
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    pipeline = StableDiffusionPipeline if spec.family == "sd15" else StableDiffusionXLPipeline
    pipeline.save_lora_weights(str(folder), unet_lora_layers=layers)
    del unet
    return (folder / "pytorch_lora_weights.safetensors").read_bytes()


class PlainLoop:
    """The baseline: plain diffusers + peft calls, written out."""

    def __init__(self, spec: Any, device: Any, dtype: Any) -> None:
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        if spec.family == "sd15":
            pipe = StableDiffusionPipeline.from_pretrained(
                spec.source, dtype=dtype, safety_checker=None, requires_safety_checker=False
            )
        else:
            pipe = StableDiffusionXLPipeline.from_pretrained(spec.source, dtype=dtype)
        self.pipe = pipe.to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.scheduler_config = pipe.scheduler.config

    def __call__(self, lora: bytes, seeds: list[int], *, steps: int, size: int, batch: int, weight: float) -> list[Any]:
        import torch
        from diffusers import DPMSolverMultistepScheduler
        from safetensors.torch import load

        pipe = self.pipe
        pipe.load_lora_weights(load(lora), adapter_name="identity")
        pipe.set_adapters(["identity"], [weight])
        pipe.fuse_lora(adapter_names=["identity"])
        images = []
        try:
            for start in range(0, len(seeds), batch):
                chunk = seeds[start : start + batch]
                pipe.scheduler = DPMSolverMultistepScheduler.from_config(
                    self.scheduler_config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
                )
                with torch.inference_mode():
                    images += pipe(
                        prompt=PROMPT.replace("{subject}", TRIGGER),
                        negative_prompt=NEGATIVE,
                        num_inference_steps=steps,
                        guidance_scale=7.0,
                        width=size,
                        height=size,
                        num_images_per_prompt=len(chunk),
                        generator=[torch.Generator("cpu").manual_seed(seed) for seed in chunk],
                    ).images
        finally:
            pipe.unfuse_lora()
            pipe.unload_lora_weights()
        return images


def plain_img2img(
    plain: PlainLoop, lora: bytes, images: list[Any], *, strength: float, steps: int, weight: float, batch: int = 4
) -> list[Any]:
    """The baseline of a stage: the same img2img work written out with plain diffusers (from_pipe of the plain
    pipeline, the LoRA loaded and fused once, the images in batches of `batch`)."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
    from safetensors.torch import load

    sdxl = hasattr(plain.pipe, "text_encoder_2")
    pipe = (StableDiffusionXLImg2ImgPipeline if sdxl else StableDiffusionImg2ImgPipeline).from_pipe(plain.pipe)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(load(lora), adapter_name="identity")
    pipe.set_adapters(["identity"], [weight])
    pipe.fuse_lora(adapter_names=["identity"])
    out: list[Any] = []
    try:
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            pipe.scheduler = DPMSolverMultistepScheduler.from_config(
                plain.scheduler_config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
            )
            with torch.inference_mode():
                out += pipe(
                    prompt=PROMPT.replace("{subject}", TRIGGER),
                    negative_prompt=NEGATIVE,
                    image=chunk,
                    strength=strength,
                    num_inference_steps=steps,
                    guidance_scale=7.0,
                    num_images_per_prompt=len(chunk),
                    generator=[torch.Generator("cpu").manual_seed(i) for i in range(len(chunk))],
                ).images
    finally:
        pipe.unfuse_lora()
        pipe.unload_lora_weights()
    return out


def bench_stages(
    spec: Any, cache: Any, plain: PlainLoop, lora: bytes, config: Any, args: argparse.Namespace, sync: Any
) -> dict[str, Any]:
    """The portrait pipeline's stages (engine.portrait), each timed per image on the same model: the base render,
    the face pass (one face: a fixed box, random weights draw no face), the upscale to the long side (tiles
    re-rendered at denoise 0.25), a template photo (a fixture face photo, its face inpainted), and the output
    check on the final image (medians of --repeat calls). The face pass and the upscale are compared with the same
    img2img work written out in plain diffusers (crops / tiles through a from_pipe img2img pipeline); a stage's
    time is the whole call's minus the base render's."""
    import copy

    from PIL import Image

    from engine import portrait, upscale
    from engine.safety import check_safety

    size = config.width
    box = (int(size * 0.3), int(size * 0.2), int(size * 0.7), int(size * 0.6))
    one = copy.copy(config)
    one.seeds, one.batch_size = config.seeds[:1], 1
    long_side = args.long_side or (3000 if args.real_size else 4 * size)

    def median_time(call: Any, *, warm_up: bool = False) -> tuple[float, Any]:
        """The median of `args.repeat` timed calls of `call` (after one untimed call with `warm_up`), and the last
        call's result."""
        if warm_up:
            call()
        times, out = [], None
        for _ in range(args.repeat):
            sync()
            start = time.perf_counter()
            out = call()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times), out

    def run(stages: Any, cfg: Any = one) -> tuple[float, list[Any]]:
        """The median time of the portrait pipeline with `stages`, and the last call's portraits."""
        return median_time(
            lambda: portrait.render_portraits(
                cache=cache,
                spec=spec,
                identity_lora=lora,
                trigger_phrase=TRIGGER,
                config=cfg,
                stages=stages,
                detector=lambda image: [box],
            )
        )

    def plain_timed(images: list[Any], strength: float, steps: int) -> float:
        return median_time(
            lambda: plain_img2img(plain, lora, images, strength=strength, steps=steps, weight=args.weight)
        )[0]

    run(portrait.Stages())  # warm-up
    base, made = run(portrait.Stages())
    face_total, _ = run(portrait.Stages(face_pass=portrait.FacePass()))
    up_total, upscaled = run(portrait.Stages(upscale=portrait.Upscale(long_side=long_side, denoise=0.25)))
    entry = portrait.stage_entries(upscaled[0].recipe)["upscale"]
    from tests.face_fixtures import FACES  # ../shared, or $FACE_FIXTURES_DIR (the GPU check carries them)

    photo = Image.open(FACES / "person_a_01.jpg").convert("RGB")
    photo_total, _ = run(portrait.Stages(template_photo=portrait.TemplatePhoto(image=photo)))
    start = time.perf_counter()
    check_safety(upscaled[0].image)
    check = time.perf_counter() - start

    # Baselines: the same img2img work in plain diffusers.
    face_steps = portrait.stage_steps(one, None, 0.4)
    from engine import masks

    crop = masks.crop_box(box, masks.MaskSettings(), (size, size))
    crop_image = made[0].image.crop(crop).resize((size, size), Image.Resampling.LANCZOS)
    plain_img2img(plain, lora, [crop_image], strength=0.4, steps=face_steps, weight=args.weight)  # warm-up
    plain_face = plain_timed([crop_image], 0.4, face_steps)
    target = upscale.target_size(made[0].image.size, long_side)
    tiles = [
        made[0].image.resize(target, Image.Resampling.LANCZOS).crop(b)
        for b in upscale.tile_boxes(target, size, max(8, size // 8))
    ]
    up_steps = portrait.stage_steps(one, None, 0.25)
    plain_up = plain_timed(tiles, 0.25, up_steps)
    face, up = face_total - base, up_total - base

    # A two-person group portrait (engine.group, issue 17): the scene with no identity, then each face with its own
    # person's LoRA, against the single portrait with its face pass measured above, in the same run.
    from engine import group

    with tempfile.TemporaryDirectory(prefix="bench-group-") as folder:
        second = make_lora(spec, Path(folder) / "second")
    left = (int(size * 0.05), int(size * 0.25), int(size * 0.45), int(size * 0.65))
    right = (int(size * 0.55), int(size * 0.2), int(size * 0.95), int(size * 0.6))
    members = [group.Subject(1, lora, TRIGGER), group.Subject(2, second, "sks person")]
    pair = copy.copy(one)
    pair.prompt = "{subject_1} and {subject_2}, portrait photo"
    group_total, made_group = median_time(
        lambda: group.render_group_portraits(
            cache=cache,
            spec=spec,
            subjects=members,
            config=pair,
            stages=portrait.Stages(face_pass=portrait.FacePass()),
            detector=lambda image: [right, left],
        ),
        warm_up=True,
    )
    assert made_group[0].ok, made_group[0].error
    per_face = (group_total - base) / len(members)

    # An instant portrait (engine.instant, issue 17): the face photo through an IP-Adapter (random weights, built
    # for this model: ViT-H's image encoder at real size, a tiny one otherwise), loaded and unloaded per render.
    from engine import identity_adapters, instant
    from engine.checkpoints import build_tiny_ip_adapter

    vit_h = {
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "projection_dim": 1024,
    }
    with tempfile.TemporaryDirectory(prefix="bench-instant-") as folder:
        files = build_tiny_ip_adapter(spec, folder, encoder=vit_h if args.real_size else None)
        adapter = identity_adapters.enable(
            {"key": f"ip-adapter-{'sd15' if spec.family == 'sd15' else 'plus-face-sdxl'}", **files}
        )
        instant_total, _ = median_time(
            lambda: instant.render_instant(cache=cache, spec=spec, adapter=adapter, photos=[photo], config=one),
            warm_up=True,
        )
    result = {
        "base": base,
        "face": face,
        "face_ratio": face / plain_face,
        "upscale": up,
        "upscale_ratio": up / plain_up,
        "tiles": entry["tiles"],
        "long_side": long_side,
        "photo": photo_total,
        "check_ms": check * 1000,
        "instant": instant_total,
        "instant_ratio": instant_total / base,
        "group": group_total,
        "group_face": per_face,
        "group_ratio": group_total / face_total,
        "single": face_total,
    }
    print(
        f"stages {spec.family} @{size}: base {base:.2f} s | face pass {face:.2f} s (1 face, {face_steps} steps x 0.4; "
        f"plain img2img {plain_face:.2f} s, ratio x{result['face_ratio']:.2f}) | upscale to {long_side} px "
        f"{up:.2f} s ({entry['tiles']} tiles x {int(up_steps * 0.25)} steps; plain {plain_up:.2f} s, ratio "
        f"x{result['upscale_ratio']:.2f}) | template photo {photo_total:.2f} s (1 face inpainted into "
        f"{photo.width}x{photo.height}) | output check {check * 1000:.0f} ms on the {target[0]}x{target[1]} image",
        flush=True,
    )
    print(
        f"group {spec.family} @{size}: 2 people {group_total:.2f} s (the scene, then each face with its own LoRA: "
        f"{per_face:.2f} s a face) | one person with its face pass {face_total:.2f} s (its face {face:.2f} s) | "
        f"group / single x{result['group_ratio']:.2f}",
        flush=True,
    )
    print(
        f"instant {spec.family} @{size}: {instant_total:.2f} s a portrait (the face photo through an IP-Adapter, "
        f"loaded and unloaded each time, its image encoder kept warm in the cache) | a plain render {base:.2f} s | "
        f"instant / plain "
        f"x{result['instant_ratio']:.2f}",
        flush=True,
    )
    return result


RUN_STAGES = (("base", "base"), ("face_pass", "face pass"), ("upscale", "upscale"), ("run", "whole run"))


def _gain(rates: tuple[float, float]) -> str:
    return f"{rates[0] / rates[1]:.2f}"


def bench_run(spec: Any, cache: Any, lora: bytes, config: Any, args: argparse.Namespace, sync: Any) -> dict[str, Any]:
    """Images per second of each stage for a run of ``--images`` portraits (face pass on a fixed box, upscale to
    twice the render's size at denoise 0.25): batched across the portraits (one call) against one call per portrait
    (medians of --repeat runs of each, interleaved)."""
    import copy

    from engine import portrait, rendering, upscale

    size = config.width
    box = (int(size * 0.3), int(size * 0.2), int(size * 0.7), int(size * 0.6))
    long_side = 2 * size
    stages = portrait.Stages(face_pass=portrait.FacePass(), upscale=portrait.Upscale(long_side=long_side, denoise=0.25))

    def call(cfg: Any) -> list[Any]:
        return portrait.render_portraits(
            cache=cache,
            spec=spec,
            identity_lora=lora,
            trigger_phrase=TRIGGER,
            config=cfg,
            stages=stages,
            detector=lambda image: [box],
        )

    def one_by_one() -> list[Any]:
        made = []
        for seed in config.seeds:
            cfg = copy.copy(config)
            cfg.seeds = [seed]
            made += call(cfg)
        return made

    def timed(fn: Any) -> tuple[float, dict[str, float]]:
        sync()
        start = time.perf_counter()
        made = fn()
        sync()
        seconds: dict[str, float] = {"base": 0.0, "face_pass": 0.0, "upscale": 0.0}
        for item in made:
            for name, entry in portrait.stage_entries(item.recipe).items():
                if name in seconds:
                    # the base entry's seconds are per image of its batch; the stages' are each portrait's own share
                    seconds[name] += float(entry.get("seconds") or 0.0)
        return time.perf_counter() - start, seconds

    timed(lambda: call(config))  # warm-up
    batched, single = [], []
    for _ in range(args.repeat):
        batched.append(timed(lambda: call(config)))
        single.append(timed(one_by_one))
    images = len(config.seeds)

    def rate(runs: list[tuple[float, dict[str, float]]], stage: str | None) -> float:
        values = [total if stage is None else parts[stage] for total, parts in runs]
        return images / max(statistics.median(values), 1e-9)

    result = {name: (rate(batched, name), rate(single, name)) for name in ("base", "face_pass", "upscale")}
    result["run"] = (rate(batched, None), rate(single, None))
    tiles = len(upscale.tile_boxes((long_side, long_side), size, max(8, size // 8)))
    batch = rendering.render_batch_size(spec.family, rendering.cache_memory_gib(cache), size, size)
    parts = " | ".join(
        f"{label} {result[name][0]:.2f} img/s ({result[name][1]:.2f} one at a time, x{_gain(result[name])})"
        for name, label in RUN_STAGES
    )
    print(
        f"run {spec.family} @{size}: {images} portraits, face pass (1 face each) + upscale to {long_side} px "
        f"({tiles} tiles each), batched across the portraits (stage batch {batch}) | {parts}",
        flush=True,
    )
    return result


def bench_family(family: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import numpy as np

    from engine import rendering
    from engine.checkpoints import build_tiny_model
    from engine.device import pick_device

    device, dtype = pick_device(args.device)
    if args.real_size:
        spec = build_real_size(workdir, family, device, dtype)
    else:
        spec = build_tiny_model(workdir / "tiny", family)
    size = args.size or spec.native_resolution
    lora_dir = workdir / f"lora-{family}"
    lora_dir.mkdir(exist_ok=True)
    lora = make_lora(spec, lora_dir)
    seeds = list(range(100, 100 + args.images))

    sync = _synchronizer(device)
    cold_cache = rendering.PipelineCache(device=args.device)
    sync()
    started = time.perf_counter()
    cold_cache.get(spec)
    sync()
    cold = time.perf_counter() - started
    started = time.perf_counter()
    cold_cache.get(spec)
    warm = time.perf_counter() - started
    cache = cold_cache  # the engine renders with the warm cache
    plain = PlainLoop(spec, device, dtype)

    config = rendering.RenderConfig(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        scheduler="dpmpp_2m_karras",
        steps=args.steps,
        guidance=7.0,
        width=size,
        height=size,
        seeds=seeds,
        identity_weight=args.weight,
        batch_size=args.batch,
    )

    def engine() -> list[Any]:
        items = rendering.render(
            cache=cache,
            spec=spec,
            identity_lora=lora,
            trigger_phrase=TRIGGER,
            config=config,
            progress=lambda done, total: None,
            should_cancel=lambda: False,
        )
        return [item.image for item in items]

    def baseline() -> list[Any]:
        return plain(lora, seeds, steps=args.steps, size=size, batch=args.batch, weight=args.weight)

    def timed(fn: Any) -> tuple[float, list[Any]]:
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        return time.perf_counter() - start, out

    _, first_engine = timed(engine)  # warm-ups (kernels, allocator)
    _, first_plain = timed(baseline)
    diff = max(
        int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())
        for a, b in zip(first_engine, first_plain, strict=True)
    )
    engine_times, plain_times = [], []
    for _ in range(args.repeat):
        engine_times.append(timed(engine)[0])
        plain_times.append(timed(baseline)[0])
    e, p = statistics.median(engine_times), statistics.median(plain_times)
    check_ms = _time_output_check(first_engine)
    stages = None if args.no_stages else bench_stages(spec, cache, plain, lora, config, args, sync)
    run = None if args.no_stages else bench_run(spec, cache, lora, config, args, sync)
    if args.profile:
        _profile(engine, baseline, sync)
    result = {
        "family": family,
        "size": size,
        "engine": e,
        "plain": p,
        "ratio": e / p,
        "cold": cold,
        "warm": warm,
        "images_per_s": args.images / e,
        "pixel_diff": diff,
        "check_ms": check_ms,
        "check_share": check_ms / 1000 / (e / args.images),
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "stages": stages,
        "run": run,
    }
    print(
        f"render {family} @{size} on {result['device']} ({result['dtype']}): {args.images} images, {args.steps} steps, "
        f"batch {args.batch} | engine {e:.3f} s (runs {', '.join(f'{t:.3f}' for t in engine_times)}), "
        f"plain {p:.3f} s (runs {', '.join(f'{t:.3f}' for t in plain_times)}) | ratio x{e / p:.3f} "
        f"(best runs x{min(engine_times) / min(plain_times):.3f}) | "
        f"{args.images / e:.2f} images/s | same pixels: {'yes' if diff == 0 else f'max diff {diff}'} | "
        f"cold load {cold:.2f} s, warm {warm * 1000:.3f} ms | cache {cache.stats['loads']} load(s), "
        f"{cache.stats['hits']} hits | explicit-content check {check_ms:.0f} ms per image on the CPU "
        f"({result['check_share']:.1%} of an image's render time)",
        flush=True,
    )
    _free(device)
    return result


def _time_output_check(images: list[Any]) -> float:
    """Median milliseconds of the explicit-content check the render jobs run on every output
    (engine.safety.check_safety: nudenet's ONNX model on onnxruntime, CPU), on the engine's images;
    the detector is loaded by an untimed first call."""
    from engine.safety import check_safety

    check_safety(images[0])
    times = []
    for image in images:
        start = time.perf_counter()
        check_safety(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _profile(engine: Any, baseline: Any, sync: Any) -> None:
    """cProfile of one engine run and one baseline run: where the time goes (top functions by own time)."""
    import cProfile
    import pstats

    for label, fn in (("engine", engine), ("plain", baseline)):
        profiler = cProfile.Profile()
        profiler.enable()
        fn()
        sync()
        profiler.disable()
        print(f"--- profile: {label} (top 20 by own time) ---", flush=True)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(20)


def _synchronizer(device: Any) -> Any:
    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def _free(device: Any) -> None:
    import gc

    gc.collect()
    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["sd15", "sdxl", "both"], default=None, help="default sd15 (tiny), both")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 15 tiny, 30 real-size)")
    parser.add_argument("--images", type=int, default=4, help="images (seeds) per run")
    parser.add_argument("--batch", type=int, default=None, help="images per pipeline call (default all, at most 4)")
    parser.add_argument("--size", type=int, default=None, help="pixels (default: the model's native resolution)")
    parser.add_argument("--weight", type=float, default=1.0, help="identity LoRA weight")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs of each (default 3)")
    parser.add_argument("--real-size", action="store_true", help="SD 1.5/SDXL architectures with random weights")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one run of each")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--long-side", type=int, default=None, help="upscale stage target (default 3000 real-size)")
    parser.add_argument("--no-stages", action="store_true", help="skip the portrait stages' timings")
    args = parser.parse_args()
    if args.real_size and (args.device == "cpu" or not _cuda_available()):
        sys.exit(
            "bench/render.py --real-size needs a CUDA GPU (SD 1.5 / SDXL-sized renders and 3000 px upscales on this "
            "CPU would take hours); run it on the GPU machine: bench/gpu_check.sh"
        )
    families = {"both": ["sd15", "sdxl"], None: ["sd15", "sdxl"] if args.real_size else ["sd15"]}.get(
        args.family, [args.family]
    )
    args.steps = args.steps or (30 if args.real_size else 15)
    args.repeat = args.repeat or 3
    args.batch = args.batch or min(args.images, 4)

    import diffusers
    import peft
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"device: {torch.cuda.get_device_name()}", flush=True)
    print(
        f"torch {torch.__version__}, diffusers {diffusers.__version__}, peft {peft.__version__}, "
        f"{torch.get_num_threads()} CPU threads",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        for family in families:
            results.append(bench_family(family, args, Path(tmp)))
    parts = [
        f"{r['family']}@{r['size']} {r['images_per_s']:.2f} img/s | ratio x{r['ratio']:.3f} | "
        f"cold load {r['cold']:.2f} s, warm {r['warm'] * 1000:.3f} ms | "
        f"safety check {r['check_ms']:.0f} ms/image ({r['check_share']:.1%} of render)"
        for r in results
    ]
    kind = "real-size" if args.real_size else "tiny"
    print(
        f"bench/render: {kind}, {args.images} images x {args.steps} steps on {results[0]['device']} | "
        + " || ".join(parts)
    )
    staged = [r for r in results if r["stages"]]
    if staged:
        print(
            "bench/render stages: "
            + " || ".join(
                f"{r['family']}@{r['size']} per image: base {r['stages']['base']:.2f} s, face pass "
                f"{r['stages']['face']:.2f} s (x{r['stages']['face_ratio']:.2f} plain), upscale to "
                f"{r['stages']['long_side']} px {r['stages']['upscale']:.2f} s / {r['stages']['tiles']} tiles "
                f"(x{r['stages']['upscale_ratio']:.2f} plain), template photo {r['stages']['photo']:.2f} s, "
                f"output check {r['stages']['check_ms']:.0f} ms; a 2-person group {r['stages']['group']:.2f} s "
                f"({r['stages']['group_face']:.2f} s a face; x{r['stages']['group_ratio']:.2f} one person with "
                f"its face pass); an instant portrait {r['stages']['instant']:.2f} s "
                f"(x{r['stages']['instant_ratio']:.2f} the base render)"
                for r in staged
            )
        )
        print(
            "bench/render run (images/s per stage, batched across the portraits vs one portrait at a time): "
            + " || ".join(
                f"{r['family']}@{r['size']} "
                + ", ".join(
                    f"{label} {r['run'][name][0]:.2f} vs {r['run'][name][1]:.2f} (x{_gain(r['run'][name])})"
                    for name, label in RUN_STAGES
                )
                for r in staged
            )
        )


if __name__ == "__main__":
    main()
