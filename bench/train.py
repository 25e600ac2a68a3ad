"""Identity-LoRA training: the engine (engine.training) against a plain diffusers + peft loop.

One run, one model, the same steps, batch, rank, resolution, dtype, autocast and gradient-checkpointing setting:

- **engine**: ``train_identity_lora`` with checkpoints only at the last step and no validation renders
  (``scored_checkpoints=1``), so the timed part holds the same work as the plain loop;
- **plain**: the loop of diffusers' ``examples/dreambooth/train_dreambooth_lora.py`` written out here (components
  loaded with ``from_pretrained`` from the same folder, ``unet.add_adapter(LoraConfig(...))`` on to_q/to_k/to_v/
  to_out.0, AdamW, cosine ``get_scheduler``, grad clipping, ``loss.item()`` every step), with the VAE latents and
  the caption embedding computed once before the loop as the engine does (the fair comparison of the loops
  themselves; the reference script re-encodes every step, which would only flatter the engine).

Seconds per step are measured between the progress reports (engine) or around the steps (plain) after a few
warm-up steps, so model loading, photo preparation and the final checkpoint are outside the timed window; the
engine's whole wall time is printed too. The two run in interleaved pairs (``--repeats``, at least 3; the order
within a pair alternates: engine first, then plain first, ...), each pair gives a ratio, and the **median of the
pairs' ratios** is the figure (a shared machine's load drifts: a pair's two runs see nearly the same load, and the
median ignores a pair the drift split). The best runs are printed beside it.

    python bench/train.py                      # tiny SD 1.5 model, CPU (or CUDA when present), ~30 s
    python bench/train.py --family sdxl
    python bench/train.py --batch 4            # both loops at batch 4: seconds per step and images per second
    python bench/train.py --loss-every 1       # the engine reading its loss every step (the old loop), to compare
    python bench/train.py --compile            # the engine with torch.compile'd UNet (whole call incl. compile)
    python bench/train.py --real-size --steps 60 [--photos 20] [--grad-ckpt on|off]   # GPU timing at real sizes

The engine's own options can be switched off one at a time to measure each on its own (``--no-fused``,
``--no-channels-last``: CUDA only, no-ops on the CPU). ``--real-size`` needs CUDA and stops at once without it
(building and stepping SD-sized models on a CPU takes hours). With ``--photos N`` the complete double uses the
engine's default schedule on this device (batch 4 × ceil(800 / 4) steps on an 80 GB GPU for SD 1.5: see
``engine.training.training_schedule``), and the line compares it with the plain loop's batch-1 schedule
(``min(200 × N, 800)`` steps at the measured batch-1 seconds per step; run with ``--batch 1``, the default).

``--real-size`` builds the SD 1.5 / SDXL UNet, VAE and CLIP text encoders from their published configurations
(bench/gpu_sizes.py) with random weights, saved in diffusers format (nothing is downloaded; timing doesn't depend
on the weights). ``--photos N`` also runs one complete engine training for N photos with the default steps
(min(200 × N, 800)) and the default checkpoints and validation, and prints its total time.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.face_fixtures import FACES  # noqa: E402  (../shared beside the project, or beside its origin)

RANK = 16
WARMUP = 3


# --------------------------------------------------------------------------------------------- inputs


def photos(count: int) -> list[Any]:
    """``count`` photos: the face fixtures (flipped and cropped variants to reach the count), else noise."""
    import numpy as np
    from PIL import Image, ImageOps

    base = [Image.open(p).convert("RGB") for p in sorted(FACES.glob("person_a_0[1-4].jpg"))] if FACES.is_dir() else []
    if not base:
        rng = np.random.default_rng(0)
        base = [Image.fromarray(rng.integers(0, 255, (640, 512, 3), dtype=np.uint8)) for _ in range(4)]
    out = []
    for i in range(count):
        image = base[i % len(base)]
        variant = (i // len(base)) % 3
        if variant == 1:
            image = ImageOps.mirror(image)
        elif variant == 2:
            w, h = image.size
            image = image.crop((w // 12, h // 12, w - w // 12, h - h // 12))
        out.append(image)
    return out


def build_real_size(root: Path, family: str) -> Any:
    """SD 1.5 / SDXL-sized components with random weights, saved in diffusers format under ``root``."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from gpu_sizes import SD15_UNET, SDXL_UNET, VAE, clip_config
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from engine.checkpoints import BaseModelSpec, _write_tokenizer

    folder = root / f"real-{family}"
    resolution = 512 if family == "sd15" else 1024
    init_device = "cuda" if torch.cuda.is_available() else "cpu"  # random init of 2.6 B parameters is slow on CPU

    def text(hidden: int, layers: int, heads: int, projection: int) -> Any:
        config = clip_config(hidden, layers, heads, projection)
        config.bos_token_id, config.eos_token_id, config.pad_token_id = 512, 513, 513  # the byte tokenizer's ids
        return config

    torch.manual_seed(0)
    with torch.device(init_device):
        parts: dict[str, Any] = {
            "unet": UNet2DConditionModel(**(SD15_UNET if family == "sd15" else SDXL_UNET)),
            "vae": AutoencoderKL(
                **VAE, sample_size=resolution, scaling_factor=0.18215 if family == "sd15" else 0.13025
            ),
            "text_encoder": CLIPTextModel(text(768, 12, 12, 768)),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(text(1280, 32, 20, 1280))
    for name, module in parts.items():
        module.to(torch.float16).save_pretrained(str(folder / name))
        del module
    parts.clear()
    gc.collect()
    _write_tokenizer(folder / "tokenizer")
    index: dict[str, Any] = {
        "_class_name": "StableDiffusionPipeline" if family == "sd15" else "StableDiffusionXLPipeline",
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if family == "sdxl":
        _write_tokenizer(folder / "tokenizer_2")
        index |= {
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
        }
    DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        clip_sample=False,
    ).save_pretrained(str(folder / "scheduler"))
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    return BaseModelSpec(name=f"real-size-{family}", family=family, source=str(folder), resolution=resolution)


# --------------------------------------------------------------------------------------------- engine


def run_engine(spec: Any, images: list[Any], steps: int, args: argparse.Namespace, work: Path) -> dict[str, float]:
    from engine.training import TrainConfig, train_identity_lora

    config = TrainConfig(
        steps=steps,
        rank=RANK,
        checkpoint_every=steps * args.batch,  # only the last step (counted in batch-1 steps): outside the window
        scored_checkpoints=1,  # no validation renders
        gradient_checkpointing=args.ckpt,
        batch_size=args.batch,
        lr_scaling="none",  # the plain loop's learning rate (speed doesn't depend on it)
        loss_every=args.loss_every,
        fused_optimizer=args.fused,
        channels_last=args.channels_last,
        compile_unet=args.compile,
    )
    import warnings

    import torch

    stamps: dict[int, float] = {}
    first, last = WARMUP, steps - 1  # the last step's report comes after its checkpoint

    def progress(report: Any) -> None:
        if not report.message and report.step in (first, last):
            sync()  # only at the window's ends: the engine's step doesn't wait for the GPU, neither does its timing
            stamps[report.step] = time.perf_counter()
            if args.cuda:  # CUDA's sync debug mode warns at every implicit host-device synchronisation in between
                torch.cuda.set_sync_debug_mode("warn" if report.step == first else "default")

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_identity_lora(
            spec=spec, images=images, work_dir=work, config=config, progress=progress, device=args.device
        )
    total = time.perf_counter() - start
    per_step = (stamps[last] - stamps[first]) / (last - first)
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {"per_step": per_step, "total": total, "syncs": syncs}


def run_engine_full(spec: Any, images: list[Any], args: argparse.Namespace, work: Path) -> dict[str, float]:
    """A complete double with the defaults (default steps, checkpoints every 100, validation and scoring)."""
    from engine.training import TrainConfig, default_steps, train_identity_lora, training_schedule

    config = TrainConfig(rank=RANK, gradient_checkpointing=args.ckpt_full, compile_unet=args.compile)
    stamps: dict[str, float] = {}

    def progress(report: Any) -> None:
        if not report.message and report.step == 1:
            stamps["first"] = time.perf_counter()
        if report.message.startswith("Checking likeness") and "validation" not in stamps:
            stamps["validation"] = time.perf_counter()

    start = time.perf_counter()
    result = train_identity_lora(
        spec=spec, images=images, work_dir=work, config=config, progress=progress, device=args.device
    )
    end = time.perf_counter()
    validation_start = stamps.get("validation", end)
    schedule = training_schedule(config, len(images), family=spec.family, cuda=args.cuda, gpu_memory_gib=args.gib)
    return {
        "batch": result.batch_size,
        "lr": schedule.learning_rate,
        "default_steps": default_steps(len(images)),
        "steps": result.steps,
        "total": end - start,
        "setup": stamps["first"] - start,
        "train": validation_start - stamps["first"],
        "validation": end - validation_start,
    }


# --------------------------------------------------------------------------------------------- plain loop


def run_plain(spec: Any, images: list[Any], steps: int, args: argparse.Namespace) -> dict[str, float]:
    """diffusers' DreamBooth-LoRA loop, written out (see the module docstring)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig
    from PIL import ImageOps
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from engine.device import pick_device

    device, half = pick_device(args.device)
    cuda = device.type == "cuda"
    dtype = half if cuda else torch.float32
    res = spec.native_resolution
    src = spec.source
    tokenizers = [CLIPTokenizer.from_pretrained(src, subfolder="tokenizer")]
    encoders = [CLIPTextModel.from_pretrained(src, subfolder="text_encoder", dtype=dtype).to(device)]
    if spec.family == "sdxl":
        tokenizers.append(CLIPTokenizer.from_pretrained(src, subfolder="tokenizer_2"))
        encoders.append(
            CLIPTextModelWithProjection.from_pretrained(src, subfolder="text_encoder_2", dtype=dtype).to(device)
        )
    vae = AutoencoderKL.from_pretrained(src, subfolder="vae", dtype=torch.float32).to(device)
    unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", dtype=dtype).to(device)
    noise_scheduler = DDPMScheduler.from_pretrained(src, subfolder="scheduler")
    for module in (*encoders, vae, unet):
        module.requires_grad_(False)

    with torch.no_grad():
        pixels = torch.stack(
            [
                torch.from_numpy(np.asarray(ImageOps.fit(im, (res, res)), dtype=np.float32) / 127.5 - 1).permute(
                    2, 0, 1
                )
                for im in images
            ]
        ).to(device)
        dist = vae.encode(pixels).latent_dist
        mean, std = dist.mean * vae.config.scaling_factor, dist.std * vae.config.scaling_factor
        ids = [
            t(
                "photo of ohwx person", padding="max_length", max_length=t.model_max_length, return_tensors="pt"
            ).input_ids.to(device)
            for t in tokenizers
        ]
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            if spec.family == "sd15":
                hidden, pooled = encoders[0](ids[0])[0], None
            else:
                outs = [e(i, output_hidden_states=True) for e, i in zip(encoders, ids, strict=True)]
                hidden = torch.cat([o.hidden_states[-2] for o in outs], dim=-1)
                pooled = outs[1].text_embeds
    hidden = hidden.to(dtype)

    unet.add_adapter(
        LoraConfig(
            r=RANK, lora_alpha=RANK, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"]
        )
    )
    if cuda:
        cast_training_params(unet, dtype=torch.float32)
        if args.ckpt:
            unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    lr_scheduler = get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=0, num_training_steps=steps)
    bsz = args.batch
    extra: dict[str, Any] = {}
    if spec.family == "sdxl":
        time_ids = torch.tensor([[res, res, 0, 0, res, res]], device=device, dtype=dtype)
        extra = {
            "added_cond_kwargs": {"text_embeds": pooled.to(dtype).expand(bsz, -1), "time_ids": time_ids.expand(bsz, -1)}
        }
    generator = torch.Generator(device=device).manual_seed(0)

    def step(i: int) -> float:
        index = torch.tensor([(i * bsz + j) % len(images) for j in range(bsz)], device=device)
        latents = mean[index] + std[index] * torch.randn(mean[index].shape, generator=generator, device=device)
        noise = torch.randn(latents.shape, generator=generator, device=device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator, device=device)
        noisy = noise_scheduler.add_noise(latents, noise, t)
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            pred = unet(noisy, t, hidden.expand(bsz, -1, -1), return_dict=False, **extra)[0]
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach().item()

    for i in range(WARMUP + 1):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(WARMUP + 1, steps):
        step(i)
    sync()
    per_step = (time.perf_counter() - start) / (steps - WARMUP - 1)
    return {"per_step": per_step}


# --------------------------------------------------------------------------------------------- main


def sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["sd15", "sdxl"], default="sd15")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default 30; 60 real-size)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved pairs (at least 3; the median counts)")
    parser.add_argument("--real-size", action="store_true", help="SD 1.5 / SDXL-sized random-weight model")
    parser.add_argument("--photos", type=int, default=0, help="also train a complete double for N photos")
    parser.add_argument(
        "--grad-ckpt",
        choices=["auto", "on", "off"],
        default="auto",
        help="gradient checkpointing (CUDA; auto: the engine's choice)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--loss-every", type=int, default=10, help="the engine's loss readout interval (1: every step)")
    parser.add_argument("--no-fused", dest="fused", action="store_false", help="the engine without fused AdamW")
    parser.add_argument(
        "--no-channels-last", dest="channels_last", action="store_false", help="the engine without channels-last"
    )
    parser.add_argument("--compile", action="store_true", help="the engine with torch.compile of the UNet")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    steps = args.steps or (60 if args.real_size else 30)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: the figure is the median of the pairs' ratios")
    if steps < WARMUP + 3:
        parser.error(f"--steps must be at least {WARMUP + 3}")

    import torch

    from engine.checkpoints import build_tiny_model
    from engine.device import pick_device
    from engine.training import auto_batch_size, needs_gradient_checkpointing

    if args.real_size and (args.device == "cpu" or not torch.cuda.is_available()):
        sys.exit(
            "bench/train.py --real-size needs a CUDA GPU (building and stepping SD 1.5 / SDXL-sized models on this "
            "CPU would take hours); run it on the GPU machine: bench/gpu_check.sh"
        )
    if args.threads:
        torch.set_num_threads(args.threads)  # a shared CPU: two threads on two busy cores run slower than one
    device, half = pick_device(args.device)
    args.cuda = device.type == "cuda"
    args.gib = torch.cuda.get_device_properties(device).total_memory / 2**30 if args.cuda else 0.0
    # the complete double's gradient checkpointing: the engine's own choice at its default batch
    args.ckpt_full = {"on": True, "off": False}.get(args.grad_ckpt)
    if args.ckpt_full is None and args.cuda:
        full_batch = auto_batch_size(args.family, True, args.gib)
        args.ckpt_full = needs_gradient_checkpointing(args.family, args.gib, full_batch)
    args.ckpt = device.type == "cuda" and (
        args.grad_ckpt == "on"
        or (
            args.grad_ckpt == "auto"
            and needs_gradient_checkpointing(
                args.family, torch.cuda.get_device_properties(device).total_memory / 2**30, args.batch
            )
        )
    )
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        spec = build_real_size(root, args.family) if args.real_size else build_tiny_model(root, args.family)
        built = time.perf_counter() - started
        images = photos(4)
        size = f"{'real-size' if args.real_size else 'tiny'} {args.family} @{spec.native_resolution}"
        print(
            f"model: {size} built in {built:.1f} s; device {device_name} ({half if device.type == 'cuda' else 'fp32'})"
        )
        engine, plain, ratios = [], [], []
        for run in range(args.repeats):
            if run % 2 == 0:
                e = run_engine(spec, images, steps, args, root / f"engine-{run}")
                free()
                p = run_plain(spec, images, steps, args)
            else:
                p = run_plain(spec, images, steps, args)
                free()
                e = run_engine(spec, images, steps, args, root / f"engine-{run}")
            free()
            engine.append(e)
            plain.append(p)
            ratios.append(e["per_step"] / p["per_step"])
            print(
                f"pair {run + 1} ({'engine first' if run % 2 == 0 else 'plain first'}): engine {e['per_step']:.4f} "
                f"s/step (whole call {e['total']:.1f} s) | plain {p['per_step']:.4f} s/step | x{ratios[-1]:.3f}",
                flush=True,
            )
        best_engine = min(e["per_step"] for e in engine)
        best_plain = min(p["per_step"] for p in plain)
        ratio = statistics.median(ratios)
        ckpt = "on" if args.ckpt else "off"
        options = [f"loss every {args.loss_every}"]
        if args.cuda:
            options.append(f"fused AdamW {'on' if args.fused else 'off'}")
            options.append(f"channels-last {'on' if args.channels_last else 'off'}")
            syncs = statistics.median(e["syncs"] for e in engine)
            options.append(f"{syncs:.0f} host-device syncs in {steps - WARMUP - 1} timed steps")
        if args.compile:
            cold, warm = engine[0]["total"], statistics.median(e["total"] for e in engine[1:])
            options.append(
                f"torch.compile (whole call {cold:.1f} s with the first compile, {warm:.1f} s from inductor's cache)"
            )
        engine_median = statistics.median(e["per_step"] for e in engine)
        line = (
            f"bench/train: {size}, {device_name}, batch {args.batch}, LoRA r{RANK}, {steps} steps, grad ckpt {ckpt}, "
            f"engine {', '.join(options)} | "
            f"engine {engine_median:.4f} s/step median (best {best_engine:.4f}; "
            f"{args.batch / engine_median:.1f} images/s) | "
            f"plain {statistics.median(p['per_step'] for p in plain):.4f} s/step median (best {best_plain:.4f}) | "
            f"ratio x{ratio:.3f}, median of {len(ratios)} interleaved pairs "
            f"({', '.join(f'x{r:.3f}' for r in ratios)}) (target <= 1.05)"
        )
        if args.photos:
            full = run_engine_full(spec, photos(args.photos), args, root / "full")
            plain_steps = full["default_steps"]
            estimate = f"{best_plain * plain_steps:.1f} s" if args.batch == 1 else "n/a (measure with --batch 1)"
            line += (
                f" | {args.photos} photos, default schedule batch {full['batch']:.0f} x {full['steps']:.0f} steps "
                f"(lr {full['lr']:.2g}): whole double {full['total']:.1f} s "
                f"(setup {full['setup']:.1f} s, training {full['train']:.1f} s, validation+save "
                f"{full['validation']:.1f} s); plain loop batch 1 x {plain_steps} steps: {estimate} of steps"
            )
        print(line)


if __name__ == "__main__":
    main()
