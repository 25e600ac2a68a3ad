"""Real-size timing probe for the portrait engine's GPU budget: plain diffusers + peft at SD 1.5 and SDXL sizes.

The real architectures (UNet, VAE, CLIP text encoders) are built from their published configurations with random
weights (nothing is downloaded: timing doesn't depend on the weights), then:

- training: DreamBooth-style LoRA (peft, rank 16 on the UNet attention projections), AdamW, bf16 autocast,
  gradient checkpointing, batch 1 at the family's native resolution (latents and text embeddings precomputed,
  as a trainer caches them) → seconds per step, and the time for a 20-photo double at the default
  min(200 x photos, 800) = 800 steps;
- rendering: txt2img with the LoRA attached (unfused), 30 DPM++ 2M Karras steps, at 512 (SD 1.5) and 1024
  (SDXL), batch 1 and 4 → images per second.

This is the plain baseline the engine is measured against (bench/train.py and bench/render.py compare the engine
with such a loop); it needs CUDA and prints one line per measurement, then a summary.

    python bench/gpu_sizes.py [--family sd15|sdxl|both] [--steps 30]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SDXL_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "cross_attention_dim": 2048,
    "attention_head_dim": (5, 10, 20),
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "latent_channels": 4,
    "layers_per_block": 2,
}


def clip_config(hidden: int, layers: int, heads: int, projection: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act="quick_gelu" if hidden == 768 else "gelu",
    )


def build(family: str, device: Any, dtype: Any, with_encoders: bool = False) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**(SD15_UNET if family == "sd15" else SDXL_UNET))
    vae = AutoencoderKL(**VAE, sample_size=512 if family == "sd15" else 1024)
    encoders = []
    if with_encoders:  # resident on the GPU as in a real pipeline; their time is outside the timed loops
        encoders.append(CLIPTextModel(clip_config(768, 12, 12, 768)))
        if family == "sdxl":
            encoders.append(CLIPTextModelWithProjection(clip_config(1280, 32, 20, 1280)))
    return {
        "unet": unet.to(device, dtype),
        "vae": vae.to(device, dtype),
        "encoders": [e.to(device, dtype) for e in encoders],
    }


def cuda_time(fn: Any, repeat: int) -> list[float]:
    import torch

    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def train_probe(family: str, parts: dict[str, Any], steps: int, *, checkpointing: bool, base_bf16: bool) -> float:
    import statistics

    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    unet = parts["unet"]
    device = next(unet.parameters()).device
    res = 512 if family == "sd15" else 1024
    unet.requires_grad_(False)
    # Frozen base weights in fp32 (the reference script's default) or bf16; the LoRA weights train in fp32.
    unet.to(torch.bfloat16 if base_bf16 else torch.float32)
    unet.add_adapter(
        LoraConfig(
            r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"]
        )
    )
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    latents = torch.randn(1, 4, res // 8, res // 8, device=device)
    hidden = torch.randn(1, 77, 768 if family == "sd15" else 2048, device=device)
    extra: dict[str, Any] = {}
    if family == "sdxl":
        extra = {
            "added_cond_kwargs": {
                "text_embeds": torch.randn(1, 1280, device=device),
                "time_ids": torch.tensor([[res, res, 0, 0, res, res]], device=device, dtype=torch.float32),
            }
        }

    def step() -> None:
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (1,), device=device)
        noisy = scheduler.add_noise(latents, noise, t)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            pred = unet(noisy, t, hidden, **extra).sample
        loss = F.mse_loss(pred.float(), noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    cuda_time(step, 5)  # warm-up
    per_step = statistics.median(cuda_time(step, steps))
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(
        f"train {family} @{res}: {per_step * 1000:.0f} ms/step (batch 1, LoRA r16, bf16 autocast, "
        f"base {'bf16' if base_bf16 else 'fp32'}, {'grad ckpt' if checkpointing else 'no grad ckpt'}) "
        f"| 800 steps (20 photos, default) = {per_step * 800:.0f} s | peak {peak:.1f} GiB",
        flush=True,
    )
    return per_step


def render_probe(family: str, parts: dict[str, Any], steps: int) -> None:
    import statistics

    import torch
    from diffusers import DPMSolverMultistepScheduler

    unet, vae = parts["unet"], parts["vae"]
    unet.eval()
    unet.to(torch.bfloat16)
    vae.to(torch.bfloat16)
    device = next(unet.parameters()).device
    res = 512 if family == "sd15" else 1024
    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        use_karras_sigmas=True,
    )
    for batch in (1, 4):
        hidden = torch.randn(2 * batch, 77, 768 if family == "sd15" else 2048, device=device, dtype=torch.bfloat16)
        extra: dict[str, Any] = {}
        if family == "sdxl":
            extra = {
                "added_cond_kwargs": {
                    "text_embeds": torch.randn(2 * batch, 1280, device=device, dtype=torch.bfloat16),
                    "time_ids": torch.tensor(
                        [[res, res, 0, 0, res, res]] * (2 * batch), device=device, dtype=torch.bfloat16
                    ),
                }
            }

        @torch.no_grad()
        def render(batch: int = batch, hidden: Any = hidden, extra: dict[str, Any] = extra) -> None:
            sched.set_timesteps(steps, device=device)
            latents = torch.randn(batch, 4, res // 8, res // 8, device=device, dtype=torch.bfloat16)
            for t in sched.timesteps:
                model_in = sched.scale_model_input(torch.cat([latents] * 2), t)
                noise = unet(model_in, t, hidden, **extra).sample
                uncond, cond = noise.chunk(2)
                latents = sched.step(uncond + 7.0 * (cond - uncond), t, latents).prev_sample
            vae.decode(latents / 0.18215).sample.float().cpu()

        cuda_time(render, 1)
        seconds = statistics.median(cuda_time(render, 3))
        print(
            f"render {family} @{res}: batch {batch}, {steps} steps CFG 7: {seconds:.2f} s/batch = "
            f"{batch / seconds:.2f} images/s",
            flush=True,
        )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["sd15", "sdxl", "both"], default="both")
    parser.add_argument("--steps", type=int, default=30, help="denoising steps per image")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_sizes.py needs CUDA")
    torch.backends.cuda.matmul.allow_tf32 = True
    print(f"device: {torch.cuda.get_device_name()} | torch {torch.__version__}", flush=True)
    for family in ("sd15", "sdxl") if args.family == "both" else (args.family,):
        for checkpointing, base_bf16 in ((True, False), (False, True)):
            parts = build(family, torch.device("cuda"), torch.float32)
            train_probe(family, parts, args.train_steps, checkpointing=checkpointing, base_bf16=base_bf16)
            if checkpointing:
                del parts
                torch.cuda.empty_cache()
        render_probe(family, parts, args.steps)
        del parts
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
