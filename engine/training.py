"""Digital double training: a DreamBooth-style identity LoRA with peft, for the SD 1.5 and SDXL families.

Plain Python (no Django). The shape follows diffusers' ``examples/dreambooth/train_dreambooth_lora.py`` (and its
SDXL sibling) without accelerate: frozen base model, peft LoRA adapters on the UNet's attention projections
(``to_q``, ``to_k``, ``to_v``, ``to_out.0``; optionally on the text encoders' ``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``), epsilon / v-prediction MSE loss on noised VAE latents, AdamW, a cosine learning-rate schedule
(``diffusers.optimization.get_scheduler``) and gradient clipping at 1.0. No prior-preservation images (identity
LoRAs for portraits are trained without them by the common open pipelines; the low rank and step cap keep the
class from drifting).

What the engine adds around that loop
-------------------------------------
* **Preprocessing** (:func:`prepare_training_images`): a square crop centred on the face found by dlib (the
  centre crop when none is found) at the training resolution. Every photo gets the caption
  ``"photo of <trigger> <class_word>"``.
* **Caching**: each photo's VAE latent distribution (mean and std) is encoded once; every step samples from it.
  Without text-encoder training the caption is encoded once too, so the VAE and text encoders run only at start.
* **Devices**: :func:`~engine.device.pick_device`. On CUDA the frozen weights are kept in bf16 (fp16
  where bf16 is unsupported, with a gradient scaler), the LoRA parameters in fp32, the forward pass under autocast,
  and gradient checkpointing where the GPU's memory calls for it (:func:`needs_gradient_checkpointing`; it costs
  about 2.3x the step time: SD 1.5 at 512 px on an H100, 341 against 148 ms per step); the UNet in channels-last
  memory format and the fused AdamW kernel. On the CPU everything is fp32 and none of that. Attention is PyTorch's
  scaled-dot-product attention everywhere (diffusers' ``AttnProcessor2_0``, set explicitly); ``compile_unet``
  compiles the UNet with ``torch.compile`` (off by default).
* **Schedule** (:func:`training_schedule`): the same images in fewer, larger steps where the GPU's memory allows
  a batch without gradient checkpointing (4, else 2; batch 1 on the CPU and on small GPUs): ``steps`` defaults to
  ``ceil(min(200 × photos, 800) / batch)`` and the learning rate is scaled by ``sqrt(batch)`` (the square-root
  rule for Adam-family optimizers), checkpoints every ``ceil(checkpoint_every / batch)`` steps (the same points
  in the data). ``TrainConfig(batch_size=1)`` is the old schedule exactly.
* **No host-device synchronisation in the step**: the photos of every step are drawn before the loop and moved to
  the device once; the loss is summed on the device and read every ``loss_every`` steps (and at checkpoints and
  the last step): progress reports carry the mean loss of the last readout.
* **Reproducibility**: fixed seeds; the photo order of step ``n`` is a function of (seed, n) and the noise comes
  from a generator whose state is checkpointed, so a resumed run continues exactly as an uninterrupted one would.
* **Checkpoints** every ``checkpoint_every`` steps (and at the last step) in ``work_dir/checkpoints/step-N/``:
  ``lora.safetensors`` (the peft state dicts) and ``training_state.pt`` (optimizer, LR schedule, gradient scaler,
  RNG states), written to a temporary folder and renamed, so a checkpoint is either complete or absent. The last
  two keep everything; the others among the last ``scored_checkpoints`` keep only their LoRA (for scoring);
  older ones are deleted. A new call with the same work folder resumes from the latest checkpoint.
  ``on_checkpoint(step, folder)``, when given, is called with each new checkpoint once it is complete (the
  Django side copies it to shared storage, so another host can resume; :func:`latest_checkpoint` and
  :func:`checkpoint_folder` tell it where a restored one goes).
* **Cancellation**: ``should_cancel()`` is asked before every step (and between validation renders); a true
  answer raises :class:`TrainingCancelled`, leaving the checkpoints as they were.
* **Out of GPU memory**: memory is freed and the run is retried once from its latest checkpoint with half the
  batch (at batch 1: with gradient checkpointing switched on, if it was off); a second failure raises
  :class:`TrainingFailed` with a message for people.
* **Choosing the checkpoint**: after training, each of the last ``scored_checkpoints`` checkpoints renders the
  neutral ``validation_prompts`` (same seeds for all), each image is scored by likeness against the identity
  centroid of the training photos (:mod:`engine.likeness`; no face counts as 0), and the checkpoint
  with the best mean is kept (ties go to the latest).
* **Output**: ``work_dir/final/pytorch_lora_weights.safetensors``, written by the pipeline class's
  ``save_lora_weights`` from ``convert_state_dict_to_diffusers(get_peft_model_state_dict(...))``: the standard
  diffusers LoRA format that ``pipe.load_lora_weights(...)`` and the common tools load.
"""

from __future__ import annotations

import collections
import gc
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from engine.checkpoints import BaseModelSpec
from engine.device import pick_device

__all__ = [
    "DEFAULT_TRIGGER",
    "DEFAULT_VALIDATION_PROMPTS",
    "LORA_FILENAME",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "TrainingFailed",
    "checkpoint_folder",
    "default_steps",
    "latest_checkpoint",
    "TrainSchedule",
    "auto_batch_size",
    "needs_gradient_checkpointing",
    "prepare_training_images",
    "train_identity_lora",
    "training_schedule",
]

#: A rare token with no prior meaning for CLIP (the DreamBooth paper's "sks" is a rifle in many base models).
DEFAULT_TRIGGER = "ohwx"
#: Neutral prompts for the validation renders; ``{subject}`` becomes the trigger phrase.
DEFAULT_VALIDATION_PROMPTS: tuple[str, ...] = (
    "photo of {subject}, looking at the camera",
    "portrait photo of {subject}, neutral background, soft light",
)
LORA_FILENAME = "pytorch_lora_weights.safetensors"
UNET_TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_ENCODER_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "out_proj"]
MAX_STEPS_DEFAULT = 800
STEPS_PER_PHOTO_DEFAULT = 200
_CHECKPOINTS = "checkpoints"
_STATE_FILE = "state.json"
_LORA_STATE = "lora.safetensors"
_TRAINING_STATE = "training_state.pt"


class TrainingCancelled(Exception):
    """Raised when ``should_cancel()`` answered true; the checkpoints written so far stay usable."""


class TrainingFailed(Exception):
    """Training cannot go on; ``str(exc)`` is a message for people."""


#: GPU memory (GiB) under which training uses gradient checkpointing, per family (batch 1, native resolution).
#: Conservative estimates (frozen bf16 weights plus a full set of activations; both families trained without
#: checkpointing on an 80 GB H100); if one is wrong, the out-of-memory retry switches checkpointing on.
CHECKPOINTING_BELOW_GIB = {"sd15": 16.0, "sdxl": 40.0}


def needs_gradient_checkpointing(family: str, gpu_memory_gib: float, batch_size: int = 1) -> bool:
    """Whether to trade speed for memory: true when the GPU has less than the family's threshold per image of the
    batch (scaled by ``sqrt(batch_size)``: activations grow with the batch, the frozen weights don't)."""
    threshold = CHECKPOINTING_BELOW_GIB.get(family, CHECKPOINTING_BELOW_GIB["sdxl"])
    return gpu_memory_gib < threshold * math.sqrt(max(batch_size, 1))


def _gpu_memory_gib(device: torch.device) -> float:
    if device.type != "cuda":
        return 0.0
    return torch.cuda.get_device_properties(device).total_memory / 2**30


def default_steps(photos: int) -> int:
    """``min(200 × photos, 800)``, at least 1: steps at batch 1 (images seen)."""
    return max(1, min(STEPS_PER_PHOTO_DEFAULT * max(photos, 0), MAX_STEPS_DEFAULT))


#: The batch sizes tried, largest first, where the GPU's memory allows them without gradient checkpointing.
LARGE_BATCHES = (4, 2)
LR_SCALINGS = ("sqrt", "linear", "none")


def auto_batch_size(family: str, cuda: bool, gpu_memory_gib: float) -> int:
    """The batch of the default schedule: on CUDA the largest of :data:`LARGE_BATCHES` that fits without gradient
    checkpointing (:func:`needs_gradient_checkpointing`), else 1; 1 on the CPU (the tiny demo model trains there;
    the plain loop's steps don't get cheaper per image with the batch on 2 cores)."""
    if not cuda:
        return 1
    for batch in LARGE_BATCHES:
        if not needs_gradient_checkpointing(family, gpu_memory_gib, batch):
            return batch
    return 1


@dataclass(frozen=True)
class TrainSchedule:
    """What a training run does: ``steps`` optimizer steps of ``batch_size`` photos at ``learning_rate`` (the
    configured one scaled for the batch), a checkpoint every ``checkpoint_every`` steps."""

    batch_size: int
    steps: int
    learning_rate: float
    checkpoint_every: int

    @property
    def images(self) -> int:
        """Photos seen (with repeats) over the run."""
        return self.batch_size * self.steps


def training_schedule(
    config: TrainConfig, photos: int, *, family: str = "sd15", cuda: bool = False, gpu_memory_gib: float = 0.0
) -> TrainSchedule:
    """The schedule of ``config`` for ``photos`` photos on this device.

    ``batch_size=None`` is :func:`auto_batch_size`, and then ``steps`` (``default_steps(photos)`` when None) counts
    batch-1 steps: the run takes ``ceil(steps / batch)`` steps, the same images as batch 1 would see, in fewer,
    larger steps (so an operator's ``ENGINE_TRAIN_STEPS=800`` is 200 steps of 4 on an H100, not 800 of 4). With a
    ``batch_size`` given, ``steps`` are the run's own (``ceil(default_steps(photos) / batch)`` when None). The
    learning rate is ``learning_rate × sqrt(batch)`` (``lr_scaling="sqrt"``, the default: for Adam-family
    optimizers the gradient noise falls with sqrt(batch), and the square-root rule keeps the update's
    signal-to-noise as at batch 1; "linear" is the SGD rule, which overshoots with Adam at small batches; "none"
    keeps it). Checkpoints come every
    ``ceil(checkpoint_every / batch)`` steps, at the same points in the data as at batch 1."""
    batch = config.batch_size if config.batch_size is not None else auto_batch_size(family, cuda, gpu_memory_gib)
    batch = max(1, int(batch))
    if config.batch_size is None or config.steps is None:
        steps = math.ceil((config.steps if config.steps is not None else default_steps(photos)) / batch)
    else:
        steps = config.steps
    factor = {"sqrt": math.sqrt(batch), "linear": float(batch), "none": 1.0}[config.lr_scaling]
    every = max(1, math.ceil(config.checkpoint_every / batch))
    return TrainSchedule(
        batch_size=batch, steps=steps, learning_rate=config.learning_rate * factor, checkpoint_every=every
    )


@dataclass
class TrainConfig:
    """Training settings; the defaults are those of the common open DreamBooth-LoRA pipelines.

    ``alpha=None`` means ``alpha = rank`` (LoRA scale 1). ``steps=None`` means :func:`default_steps` of the number
    of photos and the batch, ``batch_size=None`` the device's, and then ``steps`` count batch-1 steps (both:
    :func:`training_schedule`; ``batch_size=1`` is the old schedule: batch 1, ``min(200 × photos, 800)`` steps, the
    learning rate as given). ``learning_rate`` is the rate at batch 1, scaled for larger batches by ``lr_scaling``;
    ``checkpoint_every`` counts batch-1 steps. ``resolution=None`` means the base model's native resolution.
    ``mixed_precision``, ``gradient_checkpointing``, ``fused_optimizer`` and ``channels_last`` only apply on CUDA;
    ``gradient_checkpointing=None`` (the default) switches it on only when the GPU has too little memory to train
    without it (:func:`needs_gradient_checkpointing`). ``compile_unet`` compiles the UNet (``torch.compile``; its
    compile time counts against it). The loss is read from the device every ``loss_every`` steps. The last
    ``scored_checkpoints`` checkpoints are rendered and scored at the end (1 keeps the last one without rendering
    anything).
    """

    trigger: str = DEFAULT_TRIGGER
    class_word: str = "person"
    rank: int = 16
    alpha: int | None = None
    learning_rate: float = 1e-4
    steps: int | None = None
    batch_size: int | None = None
    train_text_encoder: bool = False
    checkpoint_every: int = 100
    seed: int = 0
    mixed_precision: bool = True
    gradient_checkpointing: bool | None = None
    validation_prompts: tuple[str, ...] = DEFAULT_VALIDATION_PROMPTS
    validation_steps: int = 20
    validation_guidance: float = 7.0
    resolution: int | None = None
    scored_checkpoints: int = 3
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    lr_scaling: str = "sqrt"
    fused_optimizer: bool = True
    channels_last: bool = True
    compile_unet: bool = False
    loss_every: int = 10

    def __post_init__(self) -> None:
        if not self.trigger.strip() or not self.class_word.strip():
            raise ValueError("trigger and class_word must not be empty")
        for name in ("rank", "checkpoint_every", "validation_steps", "scored_checkpoints", "loss_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be at least 1 (or None for the device's)")
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALINGS)}")
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be at least 1 (or None for the default)")
        if self.alpha is not None and self.alpha <= 0:
            raise ValueError("alpha must be positive (or None for alpha = rank)")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ValueError("resolution must be a positive multiple of 8")

    def trigger_phrase(self) -> str:
        """``"<trigger> <class_word>"``, e.g. ``"ohwx person"``: what ``{subject}`` becomes in prompts."""
        return f"{self.trigger.strip()} {self.class_word.strip()}"

    def caption(self) -> str:
        """The training caption: ``"photo of ohwx person"``."""
        return f"photo of {self.trigger_phrase()}"

    def total_steps(self, photos: int, batch_size: int = 1) -> int:
        """The optimizer steps for ``photos`` photos at ``batch_size`` (see :func:`training_schedule`)."""
        return self.steps if self.steps is not None else math.ceil(default_steps(photos) / max(batch_size, 1))

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else self.rank


@dataclass
class TrainProgress:
    """One progress report. ``message`` is empty for plain step reports (step, loss, ETA say it all) and names
    the phase otherwise (preparing, validating, saving)."""

    step: int
    total: int
    loss: float | None
    eta_seconds: float | None
    message: str = ""


@dataclass
class TrainResult:
    """The trained double. ``lora_path`` is the standard diffusers LoRA file; ``scores`` maps each scored
    checkpoint's step to its mean validation likeness (0-100); ``resumed_from`` is the checkpoint step the run
    started from (None for a fresh start)."""

    lora_path: Path
    centroid: np.ndarray | None
    best_step: int
    scores: dict[int, float]
    steps: int
    batch_size: int
    trigger: str
    class_word: str
    seconds: float
    resumed_from: int | None
    validation_images: list[Image.Image] = field(default_factory=list)
    learning_rate: float | None = None


ProgressFn = Callable[[TrainProgress], None]
CancelFn = Callable[[], bool]
#: Called with (step, folder) of each checkpoint once it is complete (written and renamed into place).
CheckpointFn = Callable[[int, Path], None]


# ---------------------------------------------------------------------------------------------- preprocessing


def _face_square(width: int, height: int, box: Any) -> tuple[int, int, int, int]:
    """A square crop around a face box: about 2.6 face widths (head and shoulders), centred slightly below the
    box centre (dlib's box stops at the eyebrows), as large as the photo allows, shifted to stay inside it."""
    face = max(box.width, box.height)
    side = int(min(max(round(face * 2.6), face), width, height))
    cx = (box.left + box.right) / 2
    cy = (box.top + box.bottom) / 2 + 0.1 * face
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side


def prepare_training_images(images: Sequence[Image.Image], resolution: int) -> list[Image.Image]:
    """Square RGB crops at ``resolution`` × ``resolution``: centred on the largest face found by dlib
    (head and shoulders), or the centre crop of photos without a detectable face."""
    from engine.faces import detect_faces

    prepared = []
    for image in images:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        try:
            boxes = detect_faces(rgb)
        except (ImportError, RuntimeError):  # dlib or its models missing: centre crops still train
            boxes = []
        if boxes:
            crop = rgb.crop(_face_square(rgb.width, rgb.height, boxes[0]))
            prepared.append(crop.resize((resolution, resolution), Image.Resampling.LANCZOS))
        else:
            prepared.append(ImageOps.fit(rgb, (resolution, resolution), Image.Resampling.LANCZOS))
    return prepared


# ---------------------------------------------------------------------------------------------- models


@dataclass
class _Models:
    family: str
    tokenizers: list[Any]
    text_encoders: list[Any]
    vae: Any
    unet: Any
    noise_scheduler: Any


def _load_models(spec: BaseModelSpec, weight_dtype: torch.dtype) -> _Models:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    source = spec.source
    kwargs: dict[str, Any] = {"variant": spec.variant} if spec.variant else {}
    tokenizers = [CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")]
    text_encoders = [CLIPTextModel.from_pretrained(source, subfolder="text_encoder", dtype=weight_dtype, **kwargs)]
    if spec.family == "sdxl":
        tokenizers.append(CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2"))
        text_encoders.append(
            CLIPTextModelWithProjection.from_pretrained(
                source, subfolder="text_encoder_2", dtype=weight_dtype, **kwargs
            )
        )
    # The VAE stays in fp32: SD's VAEs overflow in fp16, and it only encodes each photo once.
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", dtype=torch.float32, **kwargs)
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", dtype=weight_dtype, **kwargs)
    noise_scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler")
    for module in (*text_encoders, vae, unet):
        module.requires_grad_(False)
    return _Models(spec.family, tokenizers, text_encoders, vae, unet, noise_scheduler)


def _tokenize(tokenizer: Any, text: str, device: torch.device) -> torch.Tensor:
    return tokenizer(
        [text], padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)


def _encode_prompt(models: _Models, input_ids: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(encoder hidden states, pooled embeds or None) as the SD 1.5 / SDXL pipelines compute them."""
    if models.family == "sd15":
        return models.text_encoders[0](input_ids[0])[0], None
    hidden, pooled = [], None
    for encoder, ids in zip(models.text_encoders, input_ids, strict=True):
        out = encoder(ids, output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        if hasattr(out, "text_embeds"):
            pooled = out.text_embeds
    return torch.cat(hidden, dim=-1), pooled


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


@torch.no_grad()
def _cache_latents(vae: Any, images: Sequence[Image.Image], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each photo's latent distribution, already scaled by the VAE's scaling factor."""
    means, stds = [], []
    for start in range(0, len(images), 4):
        pixels = torch.stack([_to_tensor(im) for im in images[start : start + 4]]).to(device, torch.float32)
        dist = vae.encode(pixels).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return (torch.cat(means) - shift) * scale, torch.cat(stds) * scale


# ---------------------------------------------------------------------------------------------- training state


@dataclass
class _State:
    """Everything one training attempt works with (what :func:`_train_step` needs)."""

    models: _Models
    device: torch.device
    weight_dtype: torch.dtype
    autocast: bool
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    scaler: Any
    generator: torch.Generator
    latent_mean: torch.Tensor
    latent_std: torch.Tensor
    input_ids: list[torch.Tensor]
    prompt_embeds: torch.Tensor | None
    pooled_embeds: torch.Tensor | None
    add_time_ids: torch.Tensor | None
    max_grad_norm: float
    train_text_encoder: bool


def _batch_indices(photos: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The photos of (0-based) step ``step``: epoch after epoch, each epoch a permutation seeded by (seed, epoch).
    A pure function of its arguments, so a resumed run sees the same photos as an uninterrupted one."""
    indices = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, photos)
        order = torch.randperm(photos, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        indices.append(int(order[offset]))
    return indices


def _index_table(photos: int, batch_size: int, start: int, total: int, seed: int, device: torch.device) -> torch.Tensor:
    """The photos of steps ``start`` … ``total - 1`` (one row each, :func:`_batch_indices`), moved to the device
    once: indexing a row in the step is a device operation, where building it there would be a blocking copy."""
    rows = [_batch_indices(photos, batch_size, step, seed) for step in range(start, total)]
    table = torch.tensor(rows, dtype=torch.long).reshape(len(rows), batch_size)
    return table.to(device)


def _train_step(state: _State, indices: torch.Tensor | list[int]) -> torch.Tensor:
    """One optimisation step on the photos ``indices`` (a device tensor: no host-device copy); returns the
    detached loss, on the device (reading it would wait for the GPU)."""
    models, device = state.models, state.device
    index = indices if isinstance(indices, torch.Tensor) else torch.tensor(indices, device=device)
    mean, std = state.latent_mean[index], state.latent_std[index]
    latents = mean + std * torch.randn(mean.shape, generator=state.generator, device=device)
    noise = torch.randn(latents.shape, generator=state.generator, device=device)
    bsz = latents.shape[0]
    scheduler = models.noise_scheduler
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (bsz,), generator=state.generator, device=device
    ).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)

    with torch.autocast(device.type, dtype=state.weight_dtype, enabled=state.autocast):
        if state.train_text_encoder:
            prompt_embeds, pooled = _encode_prompt(models, state.input_ids)
        else:
            prompt_embeds, pooled = state.prompt_embeds, state.pooled_embeds
        assert prompt_embeds is not None
        prompt_embeds = prompt_embeds.expand(bsz, -1, -1)
        kwargs: dict[str, Any] = {}
        if models.family == "sdxl":
            assert pooled is not None and state.add_time_ids is not None
            kwargs["added_cond_kwargs"] = {
                "text_embeds": pooled.expand(bsz, -1),
                "time_ids": state.add_time_ids.expand(bsz, -1),
            }
        model_pred = models.unet(noisy, timesteps, prompt_embeds, return_dict=False, **kwargs)[0]

    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    loss = torch.nn.functional.mse_loss(model_pred.float(), target.float(), reduction="mean")

    if state.scaler is not None:
        state.scaler.scale(loss).backward()
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.params, state.max_grad_norm)
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(state.params, state.max_grad_norm)
        state.optimizer.step()
    state.lr_scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


# ---------------------------------------------------------------------------------------------- checkpoints


def _lora_modules(models: _Models, train_text_encoder: bool) -> dict[str, Any]:
    modules: dict[str, Any] = {"unet": models.unet}
    if train_text_encoder:
        modules["text_encoder"] = models.text_encoders[0]
        if len(models.text_encoders) > 1:
            modules["text_encoder_2"] = models.text_encoders[1]
    return modules


def _lora_state(models: _Models, train_text_encoder: bool) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    state: dict[str, torch.Tensor] = {}
    for prefix, module in _lora_modules(models, train_text_encoder).items():
        for key, value in get_peft_model_state_dict(module).items():
            state[f"{prefix}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    return state


def _load_lora_state(models: _Models, train_text_encoder: bool, state: dict[str, torch.Tensor]) -> None:
    from peft.utils import set_peft_model_state_dict

    for prefix, module in _lora_modules(models, train_text_encoder).items():
        part = {key[len(prefix) + 1 :]: value for key, value in state.items() if key.startswith(prefix + ".")}
        if not part:
            raise TrainingFailed(f"A checkpoint lacks the LoRA weights of the {prefix}: delete the work folder.")
        result = set_peft_model_state_dict(module, part)
        if getattr(result, "unexpected_keys", None):
            raise TrainingFailed(f"A checkpoint does not match the {prefix}: delete the work folder.")


def _fsync_write(path: Path, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _step_of(folder: Path) -> int | None:
    name = folder.name
    if not name.startswith("step-") or not (folder / _STATE_FILE).is_file():
        return None
    try:
        return int(name[5:])
    except ValueError:
        return None


def _checkpoints(work_dir: Path) -> dict[int, Path]:
    """Complete checkpoints (their state.json is written last, then the folder is renamed into place)."""
    root = work_dir / _CHECKPOINTS
    if not root.is_dir():
        return {}
    found = {}
    for folder in root.iterdir():
        step = _step_of(folder) if folder.is_dir() else None
        if step is not None and (folder / _LORA_STATE).is_file():
            found[step] = folder
    return dict(sorted(found.items()))


def _fingerprint(
    spec: BaseModelSpec, config: TrainConfig, photos: int, total: int, resolution: int, learning_rate: float
) -> dict:
    """What a checkpoint must match to be resumed from (batch size may differ: the OOM retry halves it; the
    learning rate is the schedule's, which is the configured one at batch 1)."""
    return {
        "source": spec.source,
        "family": spec.family,
        "photos": photos,
        "steps": total,
        "resolution": resolution,
        "rank": config.rank,
        "alpha": config.lora_alpha,
        "learning_rate": learning_rate,
        "train_text_encoder": config.train_text_encoder,
        "caption": config.caption(),
        "seed": config.seed,
        "lr_warmup_steps": config.lr_warmup_steps,
    }


def _write_checkpoint(state: _State, work_dir: Path, step: int, fingerprint: dict, batch_size: int) -> Path:
    """Write checkpoint ``step`` atomically: a temporary folder, renamed into place once complete."""
    from safetensors.torch import save_file

    root = work_dir / _CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    lora = _lora_state(state.models, state.train_text_encoder)
    save_file(lora, str(tmp / _LORA_STATE))
    training_state = {
        "optimizer": state.optimizer.state_dict(),
        "lr_scheduler": state.lr_scheduler.state_dict(),
        "scaler": state.scaler.state_dict() if state.scaler is not None else None,
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if state.device.type == "cuda" else None,
    }
    _fsync_write(tmp / _TRAINING_STATE, lambda handle: torch.save(training_state, handle))
    meta = {"step": step, "batch_size": batch_size, "fingerprint": fingerprint, "written_at": time.time()}
    _fsync_write(tmp / _STATE_FILE, lambda handle: handle.write(json.dumps(meta, indent=2).encode()))
    if final.exists():  # a checkpoint of the same step from an earlier attempt
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def _prune_checkpoints(work_dir: Path, keep_full: int, keep_scored: int) -> None:
    """Keep the last ``keep_full`` checkpoints whole, thin the others among the last ``keep_scored`` to their
    LoRA weights (enough to score them), delete older ones and leftover temporary folders."""
    root = work_dir / _CHECKPOINTS
    if root.is_dir():
        for leftover in root.glob(".tmp-step-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    steps = sorted(_checkpoints(work_dir).items(), reverse=True)
    for position, (_, folder) in enumerate(steps):
        if position < keep_full:
            continue
        if position < keep_scored:
            (folder / _TRAINING_STATE).unlink(missing_ok=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _resume(state: _State, work_dir: Path, fingerprint: dict) -> int:
    """Load the latest complete, matching checkpoint into ``state``; its step, or 0 to start afresh.
    Checkpoints of another configuration are deleted (they can't be continued)."""
    from safetensors.torch import load_file

    for step, folder in reversed(_checkpoints(work_dir).items()):
        meta = json.loads((folder / _STATE_FILE).read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint:
            shutil.rmtree(work_dir / _CHECKPOINTS, ignore_errors=True)
            return 0
        if not (folder / _TRAINING_STATE).is_file():
            continue  # thinned (LoRA only): not resumable
        _load_lora_state(state.models, state.train_text_encoder, load_file(str(folder / _LORA_STATE)))
        saved = torch.load(folder / _TRAINING_STATE, map_location="cpu", weights_only=False)
        state.optimizer.load_state_dict(saved["optimizer"])
        state.lr_scheduler.load_state_dict(saved["lr_scheduler"])
        if state.scaler is not None and saved.get("scaler"):
            state.scaler.load_state_dict(saved["scaler"])
        state.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if state.device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        return step
    return 0


# ---------------------------------------------------------------------------------------------- one attempt


def _add_text_encoder_adapter(encoder: Any, config: Any) -> None:
    """peft's own injection (what transformers' ``add_adapter`` does, without its peft version gate: transformers
    5 asks for peft >= 0.22 there, while diffusers' loaders work with the peft installed)."""
    from peft import inject_adapter_in_model

    inject_adapter_in_model(config, encoder, adapter_name="default")
    encoder.peft_config = {"default": config}


@dataclass
class _Attempt:
    state: _State
    start_step: int
    total: int
    fingerprint: dict
    schedule: TrainSchedule
    on_checkpoint: CheckpointFn | None = None


def _use_sdpa(unet: Any) -> None:
    """PyTorch's scaled-dot-product attention in every attention layer (diffusers' ``AttnProcessor2_0``: flash /
    memory-efficient kernels on CUDA), whatever the checkpoint's config chose."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    if any(not isinstance(proc, AttnProcessor2_0) for proc in unet.attn_processors.values()):
        unet.set_attn_processor(AttnProcessor2_0())


def _set_up(
    *,
    spec: BaseModelSpec,
    prepared: list[Image.Image],
    work_dir: Path,
    config: TrainConfig,
    device: torch.device,
    half_dtype: torch.dtype,
    gradient_checkpointing: bool,
    resolution: int,
    schedule: TrainSchedule,
) -> _Attempt:
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    cuda = device.type == "cuda"
    mixed = cuda and config.mixed_precision
    weight_dtype = half_dtype if mixed else torch.float32
    models = _load_models(spec, weight_dtype)
    for module in (*models.text_encoders, models.vae, models.unet):
        module.to(device)
    _use_sdpa(models.unet)
    if cuda and config.channels_last:  # cuDNN's convolutions are fastest in NHWC; the CPU's gain nothing here
        models.unet.to(memory_format=torch.channels_last)

    input_ids = [_tokenize(tok, config.caption(), device) for tok in models.tokenizers]
    latent_mean, latent_std = _cache_latents(models.vae, prepared, device)

    torch.manual_seed(config.seed)  # the LoRA initialisation
    models.unet.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.lora_alpha,
            init_lora_weights="gaussian",
            target_modules=UNET_TARGET_MODULES,
        )
    )
    trained = [models.unet]
    prompt_embeds = pooled = None
    if config.train_text_encoder:
        for encoder in models.text_encoders:
            _add_text_encoder_adapter(
                encoder,
                LoraConfig(
                    r=config.rank,
                    lora_alpha=config.lora_alpha,
                    init_lora_weights="gaussian",
                    target_modules=TEXT_ENCODER_TARGET_MODULES,
                ),
            )
            trained.append(encoder)
    else:
        with torch.no_grad(), torch.autocast(device.type, dtype=weight_dtype, enabled=mixed):
            prompt_embeds, pooled = _encode_prompt(models, input_ids)
        prompt_embeds = prompt_embeds.to(weight_dtype)
        pooled = pooled.to(weight_dtype) if pooled is not None else None
    if mixed:
        cast_training_params(trained, dtype=torch.float32)
    if cuda and gradient_checkpointing:
        models.unet.enable_gradient_checkpointing()
        if config.train_text_encoder:
            for encoder in models.text_encoders:
                encoder.gradient_checkpointing_enable()
    models.unet.train()
    for encoder in models.text_encoders:
        encoder.train(config.train_text_encoder)

    add_time_ids = None
    if models.family == "sdxl":
        # original size, crop top-left, target size: the photos are cropped and resized to the resolution.
        add_time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], device=device)
        add_time_ids = add_time_ids.to(weight_dtype)

    if config.compile_unet:
        models.unet.compile()  # in place: the module (and its peft state dict) stays the same object

    params = [p for module in trained for p in module.parameters() if p.requires_grad]
    # The fused kernel: one launch for every LoRA tensor's update instead of a few per tensor (CUDA only).
    fused = {"fused": True} if cuda and config.fused_optimizer else {}
    optimizer = torch.optim.AdamW(
        params, lr=schedule.learning_rate, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8, **fused
    )
    total = schedule.steps
    lr_scheduler = get_scheduler(
        "cosine", optimizer=optimizer, num_warmup_steps=config.lr_warmup_steps, num_training_steps=total
    )
    scaler = torch.amp.GradScaler("cuda") if mixed and weight_dtype == torch.float16 else None
    generator = torch.Generator(device=device).manual_seed(config.seed)
    state = _State(
        models=models,
        device=device,
        weight_dtype=weight_dtype,
        autocast=mixed,
        params=params,
        optimizer=optimizer,
        lr_scheduler=lr_scheduler,
        scaler=scaler,
        generator=generator,
        latent_mean=latent_mean,
        latent_std=latent_std,
        input_ids=input_ids,
        prompt_embeds=prompt_embeds,
        pooled_embeds=pooled,
        add_time_ids=add_time_ids,
        max_grad_norm=config.max_grad_norm,
        train_text_encoder=config.train_text_encoder,
    )
    fingerprint = _fingerprint(spec, config, len(prepared), total, resolution, schedule.learning_rate)
    start = _resume(state, work_dir, fingerprint)
    return _Attempt(state=state, start_step=start, total=total, fingerprint=fingerprint, schedule=schedule)


def _run_steps(
    attempt: _Attempt,
    *,
    work_dir: Path,
    config: TrainConfig,
    batch_size: int,
    photos: int,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
) -> None:
    state, total, start = attempt.state, attempt.total, attempt.start_step
    every = attempt.schedule.checkpoint_every
    # The time left follows the recent steps (the last ETA_WINDOW), not the mean since the start, so it keeps up
    # when the machine gets busier or quieter (a CPU shared with a web server and another worker).
    recent: collections.deque[float] = collections.deque(maxlen=ETA_WINDOW)
    last = time.monotonic()
    # Nothing in the step waits for the device: the photos are indexed from a table already there, and the loss is
    # summed there and read (one synchronisation) at the first step, every `loss_every` steps and at checkpoints.
    table = _index_table(photos, batch_size, start, total, config.seed, state.device)
    loss_sum = torch.zeros((), device=state.device)
    pending = 0
    loss: float | None = None
    for step in range(start, total):
        if should_cancel is not None and should_cancel():
            raise TrainingCancelled(f"Training was cancelled at step {step} of {total}.")
        loss_sum += _train_step(state, table[step - start])
        pending += 1
        current = step + 1
        checkpoint = current % every == 0 or current == total
        if checkpoint or step == start or current % config.loss_every == 0:
            loss = float(loss_sum) / pending  # the mean since the last readout
            loss_sum.zero_()
            pending = 0
            if not math.isfinite(loss):
                raise TrainingFailed(
                    f"Training diverged by step {current} (the loss is {loss}): try a lower learning rate."
                )
        if checkpoint:
            _write_checkpoint(state, work_dir, current, attempt.fingerprint, batch_size)
            _prune_checkpoints(work_dir, keep_full=2, keep_scored=max(2, config.scored_checkpoints))
            if attempt.on_checkpoint is not None:  # shared-storage hook (see latest_checkpoint)
                attempt.on_checkpoint(current, work_dir / _CHECKPOINTS / f"step-{current}")
        now = time.monotonic()
        recent.append(now - last)
        last = now
        if progress is not None:
            per_step = sum(recent) / len(recent)
            eta = per_step * (total - current + _validation_step_equivalents(config, total, every))
            progress(TrainProgress(step=current, total=total, loss=loss, eta_seconds=eta))


# ---------------------------------------------------------------------------------------------- validation


#: How many of the latest steps the time left is measured on.
ETA_WINDOW = 20

#: One denoising step of a validation image (batched, classifier-free guidance, no backward pass) costs about this
#: share of a training step: measured 0.47 on 2 CPU cores with the tiny model (75 ms against 160 ms).
VALIDATION_STEP_SHARE = 0.5


def _validation_step_equivalents(config: TrainConfig, total: int, every: int | None = None) -> float:
    """The checkpoint scoring that follows the last step, in training steps, so that the time left shown during
    training includes it (the images of the last ``scored_checkpoints`` checkpoints, ``validation_steps`` each;
    ``every``: the schedule's checkpoint interval, ``checkpoint_every`` by default)."""
    checkpoints = min(config.scored_checkpoints, max(1, math.ceil(total / (every or config.checkpoint_every))))
    if checkpoints <= 1 and config.scored_checkpoints == 1:
        return 0.0
    images = checkpoints * len(config.validation_prompts)
    return VALIDATION_STEP_SHARE * images * config.validation_steps


def _validation_pipeline(models: _Models) -> Any:
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = DPMSolverMultistepScheduler.from_config(models.noise_scheduler.config)
    if models.family == "sd15":
        return StableDiffusionPipeline(
            vae=models.vae,
            text_encoder=models.text_encoders[0],
            tokenizer=models.tokenizers[0],
            unet=models.unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    return StableDiffusionXLPipeline(
        vae=models.vae,
        text_encoder=models.text_encoders[0],
        text_encoder_2=models.text_encoders[1],
        tokenizer=models.tokenizers[0],
        tokenizer_2=models.tokenizers[1],
        unet=models.unet,
        scheduler=scheduler,
    )


def _validate(
    state: _State,
    *,
    work_dir: Path,
    config: TrainConfig,
    centroid: np.ndarray | None,
    resolution: int,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
    total: int,
) -> tuple[int, dict[int, float], dict[int, list[Image.Image]]]:
    """Render and score the last ``scored_checkpoints`` checkpoints; (best step, scores, images per step)."""
    from safetensors.torch import load_file

    from engine.likeness import score_image

    candidates = list(_checkpoints(work_dir).items())[-config.scored_checkpoints :]
    if not candidates:
        raise TrainingFailed("Training ended without a checkpoint: run it again.")
    if len(candidates) == 1 and config.scored_checkpoints == 1:
        return candidates[0][0], {}, {}
    models = state.models
    for module in (models.unet, *models.text_encoders):
        module.eval()
    pipe = _validation_pipeline(models)
    pipe.set_progress_bar_config(disable=True)
    scores: dict[int, float] = {}
    images: dict[int, list[Image.Image]] = {}
    started = time.monotonic()
    for number, (step, folder) in enumerate(candidates, start=1):
        if should_cancel is not None and should_cancel():
            raise TrainingCancelled("Training was cancelled while choosing the best checkpoint.")
        if progress is not None:
            message = f"Checking likeness of checkpoint {number} of {len(candidates)}"
            eta = None
            if number > 1:  # measured on the checkpoints done
                eta = (time.monotonic() - started) / (number - 1) * (len(candidates) - number + 1)
                left = f"{max(1, round(eta))} s" if eta < 90 else f"{round(eta / 60)} min"
                message += f" · about {left} left"
            progress(TrainProgress(step=total, total=total, loss=None, eta_seconds=eta, message=message))
        _load_lora_state(models, state.train_text_encoder, load_file(str(folder / _LORA_STATE)))
        # Every prompt in one batched call (one image each, seeded per prompt): the same images for every
        # checkpoint, and on a GPU a batch of N costs far less than N calls.
        prompts = [prompt.replace("{subject}", config.trigger_phrase()) for prompt in config.validation_prompts]
        generators = [
            torch.Generator(device=state.device).manual_seed(config.seed + index) for index in range(len(prompts))
        ]
        with torch.autocast(state.device.type, dtype=state.weight_dtype, enabled=state.autocast):
            rendered = pipe(
                prompts,
                num_inference_steps=config.validation_steps,
                guidance_scale=config.validation_guidance,
                height=resolution,
                width=resolution,
                generator=generators,
            ).images
        likeness = [score_image(image, centroid).likeness if centroid is not None else None for image in rendered]
        scores[step] = float(np.mean([value or 0.0 for value in likeness])) if likeness else 0.0
        images[step] = rendered
    best = max(scores, key=lambda s: (scores[s], s))  # ties: the latest
    return best, scores, images


def _adapter_metadata(module: Any) -> dict[str, Any]:
    """The adapter's LoRA settings that loaders need (rank, alpha, targets), stored in the safetensors header so
    that ``load_lora_weights`` applies the trained scale even when alpha differs from the rank. Only fields every
    peft version knows: the full ``to_dict()`` carries this version's new fields, which older ones refuse."""
    config = module.peft_config["default"]
    return {"r": config.r, "lora_alpha": config.lora_alpha, "target_modules": sorted(config.target_modules)}


def _save_final(state: _State, work_dir: Path, family: str, lora: dict[str, torch.Tensor], train_te: bool) -> Path:
    """Write the standard diffusers LoRA of ``lora`` (a checkpoint's weights) to work_dir/final/, atomically."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    models = state.models
    _load_lora_state(models, train_te, lora)
    layers: dict[str, Any] = {
        "unet_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(models.unet)),
        "unet_lora_adapter_metadata": _adapter_metadata(models.unet),
    }
    if train_te:
        names = ["text_encoder", "text_encoder_2"][: len(models.text_encoders)]
        for name, encoder in zip(names, models.text_encoders, strict=True):
            layers[f"{name}_lora_layers"] = convert_state_dict_to_diffusers(get_peft_model_state_dict(encoder))
            layers[f"{name}_lora_adapter_metadata"] = _adapter_metadata(encoder)
    pipeline_class = StableDiffusionPipeline if family == "sd15" else StableDiffusionXLPipeline
    final = work_dir / "final"
    tmp = work_dir / f".tmp-final-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    pipeline_class.save_lora_weights(str(tmp), safe_serialization=True, weight_name=LORA_FILENAME, **layers)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final / LORA_FILENAME


# ---------------------------------------------------------------------------------------------- entry point


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_identity_lora(
    *,
    spec: BaseModelSpec,
    images: Sequence[Image.Image],
    work_dir: Path,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    device: str | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Train an identity LoRA of the person in ``images`` on ``spec`` (see the module docstring).

    Resumes from the latest checkpoint in ``work_dir`` (same configuration). Raises :class:`TrainingCancelled`
    when ``should_cancel()`` answers true, :class:`TrainingFailed` (message for people) when it cannot train.
    ``on_checkpoint(step, folder)`` is called with every checkpoint once it is complete; what it raises ends the
    training (the caller decides what a failed copy means).
    """
    from engine.likeness import identity_centroid

    began = time.monotonic()
    if not images:
        raise TrainingFailed("There are no photos to train on.")
    try:
        torch_device, half_dtype = pick_device(device)
    except (RuntimeError, ValueError) as exc:
        raise TrainingFailed(f"No usable device: {exc}.") from None
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    resolution = config.resolution or spec.native_resolution
    photos = len(images)
    cuda = torch_device.type == "cuda"
    schedule = training_schedule(
        config, photos, family=spec.family, cuda=cuda, gpu_memory_gib=_gpu_memory_gib(torch_device)
    )
    total = schedule.steps

    def report(message: str, step: int = 0) -> None:
        if progress is not None:
            progress(TrainProgress(step=step, total=total, loss=None, eta_seconds=None, message=message))

    report(f"Preparing {photos} photos")
    prepared = prepare_training_images(images, resolution)
    try:
        centroid = identity_centroid(images)
    except (ImportError, RuntimeError):  # no dlib here: no centroid, and the latest checkpoint is kept
        centroid = None

    # The out-of-memory retry halves the batch and keeps the schedule (steps, learning rate, checkpoints), so it
    # resumes from the latest checkpoint.
    batch_size = schedule.batch_size
    checkpointing = config.gradient_checkpointing
    if checkpointing is None:
        checkpointing = cuda and needs_gradient_checkpointing(spec.family, _gpu_memory_gib(torch_device), batch_size)
    retried = False
    while True:
        out_of_memory = False
        attempt: _Attempt | None = None
        try:
            report(f"Loading the base model {spec.display_name}")
            attempt = _set_up(
                spec=spec,
                prepared=prepared,
                work_dir=work_dir,
                config=config,
                device=torch_device,
                half_dtype=half_dtype,
                gradient_checkpointing=checkpointing,
                resolution=resolution,
                schedule=schedule,
            )
            attempt.on_checkpoint = on_checkpoint
            resumed_from = attempt.start_step or None
            if resumed_from:
                report(f"Resuming from step {resumed_from}", step=resumed_from)
            _run_steps(
                attempt,
                work_dir=work_dir,
                config=config,
                batch_size=batch_size,
                photos=photos,
                progress=progress,
                should_cancel=should_cancel,
            )
            best, scores, rendered = _validate(
                attempt.state,
                work_dir=work_dir,
                config=config,
                centroid=centroid,
                resolution=resolution,
                progress=progress,
                should_cancel=should_cancel,
                total=total,
            )
            report("Saving the LoRA", step=total)
            from safetensors.torch import load_file

            best_lora = load_file(str(work_dir / _CHECKPOINTS / f"step-{best}" / _LORA_STATE))
            lora_path = _save_final(attempt.state, work_dir, spec.family, best_lora, config.train_text_encoder)
            return TrainResult(
                lora_path=lora_path,
                centroid=centroid,
                best_step=best,
                scores=scores,
                steps=total,
                batch_size=batch_size,
                trigger=config.trigger,
                class_word=config.class_word,
                seconds=time.monotonic() - began,
                resumed_from=resumed_from,
                validation_images=rendered.get(best, []),
                learning_rate=schedule.learning_rate,
            )
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True  # handled below, once the traceback (and its tensors) is released
        finally:
            attempt = None
        if out_of_memory:
            _free_memory(torch_device)
            if retried:
                raise TrainingFailed(
                    f"The GPU ran out of memory again with batch size {batch_size}"
                    f"{' and gradient checkpointing' if checkpointing else ''}: use a GPU with more memory, "
                    "a lower resolution or a lower LoRA rank."
                )
            retried = True
            if batch_size > 1:
                batch_size = max(1, batch_size // 2)
            elif not checkpointing:
                checkpointing = True
            else:
                raise TrainingFailed(
                    "The GPU ran out of memory with batch size 1 and gradient checkpointing: use a GPU with more "
                    "memory, a lower resolution or a lower LoRA rank."
                )
            report(f"Out of GPU memory: retrying with batch size {batch_size}")


def config_as_dict(config: TrainConfig) -> dict[str, Any]:
    """The configuration as plain JSON-serialisable data (for job records)."""
    data = asdict(config)
    data["validation_prompts"] = list(config.validation_prompts)
    return data


# ---------------------------------------------------------------------------------------------- shared storage


def latest_checkpoint(work_dir: Path) -> int | None:
    """The step of the latest complete checkpoint in ``work_dir`` that a run can resume from (its training state
    kept), or None. For callers that keep copies elsewhere (another host's shared storage)."""
    resumable = [step for step, folder in _checkpoints(Path(work_dir)).items() if (folder / _TRAINING_STATE).is_file()]
    return max(resumable) if resumable else None


def checkpoint_folder(work_dir: Path, step: int) -> Path:
    """Where checkpoint ``step`` lives in ``work_dir``. A copy restored there is complete once its ``state.json``
    is in place (write the other files first, or the whole folder under another name and rename it)."""
    return Path(work_dir) / _CHECKPOINTS / f"step-{int(step)}"
