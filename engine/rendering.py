"""Rendering portraits: the pipeline cache, the client's identity LoRA as a named adapter, schedulers, recipes.

Plain Python (no Django). The Django side (``generation/jobs.py``) calls :func:`render` with the base
model's spec, the client's identity LoRA (the decrypted bytes, in memory) and a :class:`RenderConfig`; every
returned :class:`RenderedImage` carries a JSON recipe from which :func:`config_from_recipe` reproduces it.

The pipeline cache
    :class:`PipelineCache` is one per worker process. A base model is loaded once with ``from_pretrained`` (the
    family's pipeline class, ``torch_dtype`` from the device: CUDA → bf16, or fp16 where bf16 isn't supported;
    CPU → fp32), moved to the device once and reused by every job. img2img and ControlNet variants are made
    with ``from_pipe``: they share the loaded modules (no reload, no extra memory) and are cached too. ControlNet
    models are loaded (once) only from the paths the operator configured. The SD 1.5 safety checker is not loaded
    (``safety_checker=None``): it would black out images (and SDXL has none). :func:`render` returns every image
    unchecked; the job handlers (``generation/jobs.py``, ``screen_outputs``) check each one for explicit
    content with :func:`engine.safety.check_safety` (nudenet, the intake's check, on the CPU) before
    anything is scored or stored, and withhold the explicit ones: a caller of :func:`render` that stores or shows
    images must do the same.
    At most ``max_models`` base models stay loaded (least recently used goes first). :attr:`PipelineCache.stats`
    counts loads, hits and load seconds. One render at a time per cache (a lock): a GPU worker runs one job.

Adapters
    Per render the identity LoRA is loaded as the adapter ``"identity"`` and, when the config has one, the style
    LoRA as ``"style"``, weighted with ``set_adapters(["identity", "style"], [identity_weight, style_weight])``.
    A render call uses one set of weights for all its images, so the adapters are fused into the base weights
    (``fuse_lora``) for the whole batch — no per-step LoRA cost — and unfused at the end (``unfuse_lora``).
    Unfusing subtracts in floating point, which in bf16 would leave the cached base weights slightly changed
    after every job; so the engine fuses into copies of the LoRA layers' base weights, keeps the original
    tensors and puts them back after unfusing: the cached pipeline is restored bit for bit. Finally
    ``unload_lora_weights`` removes every LoRA layer. All of this happens in a ``finally``, so adapters never
    leak from one job (or client) to the next; when cleaning up fails the pipeline is dropped from the cache
    and the next job loads a clean one. ``RenderConfig.fuse=False`` keeps
    the adapters unfused (the result may differ in the last bits; the recipe records which was used).

Prompts
    ``{subject}`` in the prompt is replaced by the double's trigger phrase ("ohwx person"). A prompt without the
    placeholder gets the trigger phrase prepended ("ohwx person, <prompt>") so the identity is always asked for.
    Prompts are plain text (no weighting syntax). They are **encoded whole** (:func:`encode_prompts`): CLIP reads
    77 positions (start marker, 75 tokens, end marker) and diffusers' pipelines silently drop the rest, so the
    engine tokenizes the whole prompt, cuts the token ids into windows of 75, encodes each window with its own
    markers (padded to 77) and joins the windows along the sequence axis; prompt and negative prompt are padded
    to the same number of windows with empty windows (the encoding of ""). SD 1.5: the text encoder's last
    hidden state. SDXL: both text encoders' penultimate hidden states side by side, the pooled embedding from the
    second encoder's first window; an empty negative prompt is zeros where the pipeline's config says
    ``force_zeros_for_empty_prompt``, as the pipeline would do. The embeddings go to the pipeline as
    ``prompt_embeds`` / ``negative_prompt_embeds`` (+ the pooled ones for SDXL). A prompt of at most 75 tokens
    gives exactly the embeddings the pipeline makes itself, so the pixels are the same as before. The product's
    bound on prompt length (225 CLIP tokens) is kept where prompts come in (:mod:`engine.prompts`).
    Recipes record ``prompt_encoding: "whole"`` and the token counts; a recipe without that key was rendered by
    the pipeline's own (cutting) encoding, and :func:`config_from_recipe` reproduces it that way
    (``RenderConfig.prompt_encoding = "truncated"``, logged as a warning when the prompt is longer than a window).

Seeds and reproducibility
    Each image has its own seed and its own ``torch.Generator`` on the CPU: the initial noise (and Euler
    ancestral's per-step noise) is drawn on the CPU and moved to the device, so a seed gives the same noise on
    every device; same recipe + same device (and dtype) → identical pixels. Images are rendered in batches of
    ``batch_size`` seeds; a seed rendered in another batch size may differ in the last bits on a GPU.

Progress and cancellation
    ``progress(done, total)`` is called after every denoising step, counted over the whole call (all batches:
    ``total`` = steps per batch × batches). ``should_cancel()`` is checked before loading, between batches and
    after every step; when it returns True, :class:`RenderCancelled` is raised (adapters are cleaned up).

img2img and ControlNet
    With ``init_image`` the render is img2img: the image is fitted (centre crop) to the render size and noised
    to ``strength``. ControlNet ``"pose"`` or ``"canny"`` works when the cache was given a model path for that
    name (``PipelineCache(controlnets={"canny": "/models/cn-canny"})``). ``"canny"`` turns the control image (or,
    without one, the init image) into an edge map (:func:`edge_map`: Sobel gradient + threshold, no OpenCV);
    ``"pose"`` takes an OpenPose skeleton image as it is, and turns any other image (a photo of a person) into its
    skeleton first (:func:`engine.pose.pose_control_image`, MediaPipe's BlazePose; ValueError ``PoseNotFound``
    with a message when no person is found).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from engine.checkpoints import BaseModelSpec
from engine.prompts import CHUNK_TOKENS
from engine.prompts import windows as window_count

log = logging.getLogger(__name__)

SCHEDULERS = {"dpmpp_2m_karras", "euler_a", "ddim"}
SCHEDULER_LABELS = {
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "euler_a": "Euler ancestral",
    "ddim": "DDIM",
}
CONTROLNETS = {"pose", "canny"}
IDENTITY_ADAPTER = "identity"
STYLE_ADAPTER = "style"
RECIPE_VERSION = 1
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class RenderCancelled(Exception):
    """``should_cancel()`` returned True during a render."""


@dataclass
class AdapterRef:
    """A LoRA file (or a folder holding ``pytorch_lora_weights.safetensors``) and its weight. With `sha256` set
    (a recipe's), the render checks the file is still the one the recipe was made with."""

    path: Path
    weight: float = 1.0
    sha256: str | None = None


@dataclass
class RenderConfig:
    """What to render. `prompt` contains ``{subject}`` (see the module notes); `width`/`height` None → the base
    model's native resolution; one image per seed, `batch_size` seeds at a time. `init_image` makes it img2img
    (with `strength`); `controlnet` ("pose"/"canny") needs the cache configured for it. `fuse` fuses the adapters
    for the batch (the default). `identity_sha256` (set by :func:`config_from_recipe`) makes the render check
    that the identity LoRA it is given is the one the recipe was made with. `prompt_encoding`: "whole" (the
    prompts are encoded in 75-token windows, nothing is cut) or "truncated" (the pipeline's own encoding, which
    drops what is past the first 75 tokens: only to reproduce a recipe made before prompts were encoded whole)."""

    prompt: str
    negative_prompt: str = ""
    scheduler: str = "dpmpp_2m_karras"
    steps: int = 30
    guidance: float = 7.0
    width: int | None = None
    height: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    identity_weight: float = 1.0
    batch_size: int = 1
    style_lora: AdapterRef | None = None
    init_image: Image.Image | None = None
    strength: float = 0.6
    controlnet: str | None = None
    control_image: Image.Image | None = None
    control_scale: float = 1.0
    fuse: bool = True
    identity_sha256: str | None = None
    prompt_encoding: str = "whole"
    #: One image per seed (the stages' renders: face crops, upscale tiles, template photo crops): img2img of
    #: each image at `strength`, fitted to the render size; with `mask_images` too (white: regenerate) it is
    #: inpainting. `control_images` (one per seed) go to the ControlNet instead of `control_image`.
    init_images: list[Image.Image] | None = None
    mask_images: list[Image.Image] | None = None
    control_images: list[Image.Image] | None = None
    #: A face photo through a training-free identity adapter (instant portraits): loaded for this render only.
    identity_image: IdentityImage | None = None


@dataclass
class IdentityImage:
    """A training-free identity adapter (engine.identity_adapters: an IP-Adapter and its CLIP image encoder) and
    the face photo it conditions the render on, at `scale` (instant portraits, engine/instant.py). `source`: the
    adapter's folder or hub id; `weight_name`: its weight file there (``models/x.safetensors`` names a
    subfolder); `image_encoder`: the encoder's own folder or hub id."""

    key: str
    source: str
    weight_name: str
    image_encoder: str
    image: Image.Image
    scale: float = 0.7


@dataclass
class RenderedImage:
    """One output image, its seed and its full recipe (JSON-serialisable; no path to client data)."""

    image: Image.Image
    seed: int
    recipe: dict[str, Any]


# --- the pipeline cache -----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    spec: BaseModelSpec
    pipe: Any
    scheduler_config: Any
    variants: dict[tuple[str, str | None], Any] = field(default_factory=dict)


class PipelineCache:
    """Loaded pipelines of one worker, keyed by base model name: load once, move to the device once, reuse.

    `device`: "cuda", "cuda:1", "cpu" or None (automatic). `controlnets`: ControlNet name ("pose"/"canny") →
    local folder or hub id of a diffusers ControlNet model matching the base model family. `max_models`: how many
    base models stay loaded at once (least recently used is dropped first). `inpaint_unets`: family ("sd15" /
    "sdxl") → a dedicated inpainting UNet (9 input channels: latents, mask, masked image), a diffusers
    checkpoint folder (its ``unet`` subfolder is used) or a UNet folder; the "inpaint" variant of a base model of
    that family uses it with the base model's VAE and text encoders. Without one, inpainting runs the base
    model's own UNet (diffusers blends the kept latents back at every step)."""

    def __init__(
        self,
        device: str | None = None,
        controlnets: dict[str, str] | None = None,
        *,
        max_models: int = 3,
        inpaint_unets: dict[str, str] | None = None,
    ) -> None:
        # Imported here: device.py imports torch, and this module's recipe helpers (more_like_me,
        # can_go_more_like_me) are used by the web process, which must never load torch.
        from engine.device import pick_device

        unknown = set(controlnets or {}) - CONTROLNETS
        if unknown:
            raise ValueError(f"unknown ControlNet name(s) {sorted(unknown)}: use {sorted(CONTROLNETS)}")
        self.device, self.dtype = pick_device(device)
        self.controlnets = dict(controlnets or {})
        unknown_families = set(inpaint_unets or {}) - {"sd15", "sdxl"}
        if unknown_families:
            raise ValueError(f"inpainting UNets are configured per family (sd15, sdxl), not {sorted(unknown_families)}")
        self.inpaint_unets = dict(inpaint_unets or {})
        self._inpaint_unet_models: dict[str, Any] = {}
        self.max_models = max(1, max_models)
        self.lock = threading.RLock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._controlnet_models: dict[str, Any] = {}
        self._loads = 0
        self._hits = 0
        self._variant_builds = 0
        self._controlnet_loads = 0
        self._image_encoders: dict[str, Any] = {}
        self._encoder_loads = 0
        self._load_seconds = 0.0

    @property
    def stats(self) -> dict[str, Any]:
        """{"loads", "hits", "load_seconds", "variant_builds", "controlnet_loads", "encoder_loads", "loaded",
        "device", "dtype"}."""
        return {
            "loads": self._loads,
            "hits": self._hits,
            "load_seconds": round(self._load_seconds, 3),
            "variant_builds": self._variant_builds,
            "controlnet_loads": self._controlnet_loads,
            "encoder_loads": self._encoder_loads,
            "loaded": list(self._entries),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def image_encoder(self, source: str) -> Any:
        """The CLIP image encoder of an identity adapter (a folder or hub id), loaded and moved to the device on
        first use, then kept for the worker's life like the pipelines (an instant portrait registers it on the
        pipeline for its render only)."""
        with self.lock:
            model = self._image_encoders.get(source)
            if model is None:
                from transformers import CLIPVisionModelWithProjection

                started = time.perf_counter()
                try:
                    model = CLIPVisionModelWithProjection.from_pretrained(source)
                except (OSError, ValueError) as exc:
                    raise ValueError(
                        f"the identity adapter's image encoder can't be loaded from {source!r}: {exc}"
                    ) from None
                model = model.to(device=self.device, dtype=self.dtype)
                self._load_seconds += time.perf_counter() - started
                self._encoder_loads += 1
                self._image_encoders[source] = model
            return model

    def get(self, spec: BaseModelSpec) -> Any:
        """The txt2img pipeline of `spec`, loaded and moved to the device on first use, then reused."""
        with self.lock:
            return self._entry(spec).pipe

    def variant(self, spec: BaseModelSpec, mode: str = "txt2img", controlnet: str | None = None) -> Any:
        """The pipeline for `mode` ("txt2img"/"img2img"/"inpaint") with or without a configured ControlNet, made
        from the cached base pipeline with ``from_pipe`` (shares its modules) and cached."""
        if mode not in ("txt2img", "img2img", "inpaint"):
            raise ValueError(f"unknown render mode {mode!r} (txt2img, img2img or inpaint)")
        with self.lock:
            entry = self._entry(spec)
            if mode == "txt2img" and controlnet is None:
                return entry.pipe
            key = (mode, controlnet)
            if key not in entry.variants:
                entry.variants[key] = self._make_variant(entry, mode, controlnet)
                self._variant_builds += 1
            return entry.variants[key]

    def scheduler_config(self, spec: BaseModelSpec) -> Any:
        """The scheduler config `spec` was loaded with (renders build their scheduler from it)."""
        with self.lock:
            return self._entry(spec, count=False).scheduler_config

    def discard(self, spec: BaseModelSpec) -> None:
        """Drop `spec`'s pipeline (and variants); the next use loads it again."""
        with self.lock:
            if self._entries.pop(spec.name, None) is not None:
                self._free_memory()

    def clear(self) -> None:
        with self.lock:
            self._entries.clear()
            self._controlnet_models.clear()
            self._inpaint_unet_models.clear()
            self._free_memory()

    # internals

    def _entry(self, spec: BaseModelSpec, *, count: bool = True) -> _Entry:
        entry = self._entries.get(spec.name)
        if entry is not None and (entry.spec.source, entry.spec.variant) != (spec.source, spec.variant):
            self.discard(spec)  # same name, other weights: the configuration changed
            entry = None
        if entry is not None:
            self._hits += count
            self._entries.move_to_end(spec.name)
            return entry
        while len(self._entries) >= self.max_models:
            self._entries.popitem(last=False)
            self._free_memory()
        started = time.perf_counter()
        pipe = self._load(spec)
        self._load_seconds += time.perf_counter() - started
        self._loads += 1
        entry = _Entry(spec=spec, pipe=pipe, scheduler_config=pipe.scheduler.config)
        self._entries[spec.name] = entry
        log.info("pipeline loaded: %s on %s (%s)", spec.name, self.device, self.dtype)
        return entry

    def _load(self, spec: BaseModelSpec) -> Any:
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if spec.variant:
            kwargs["variant"] = spec.variant
        if spec.family == "sd15":
            pipe = StableDiffusionPipeline.from_pretrained(
                spec.source, safety_checker=None, requires_safety_checker=False, **kwargs
            )
        else:
            pipe = StableDiffusionXLPipeline.from_pretrained(spec.source, **kwargs)
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _controlnet(self, name: str) -> Any:
        if name not in CONTROLNETS:
            raise ValueError(f"unknown ControlNet {name!r}: use one of {sorted(CONTROLNETS)}")
        source = self.controlnets.get(name)
        if not source:
            configured = ", ".join(sorted(self.controlnets)) or "none"
            raise ValueError(f"ControlNet {name!r} is not configured on this worker (configured: {configured})")
        model = self._controlnet_models.get(name)
        if model is None:
            from diffusers import ControlNetModel

            started = time.perf_counter()
            model = ControlNetModel.from_pretrained(source, dtype=self.dtype).to(self.device)
            self._load_seconds += time.perf_counter() - started
            self._controlnet_loads += 1
            self._controlnet_models[name] = model
        return model

    def _inpaint_unet(self, family: str) -> Any:
        """The operator's inpainting UNet for `family`, loaded once (from a checkpoint's ``unet`` folder or a
        UNet folder) and checked: 9 input channels (latents, mask, masked-image latents)."""
        model = self._inpaint_unet_models.get(family)
        if model is None:
            from diffusers import UNet2DConditionModel

            source = self.inpaint_unets[family]
            started = time.perf_counter()
            folder = Path(source)
            subfolder = "unet" if (folder / "unet").is_dir() or not folder.exists() else None
            try:
                model = UNet2DConditionModel.from_pretrained(source, subfolder=subfolder, dtype=self.dtype)
            except (OSError, ValueError) as exc:
                raise ValueError(f"the inpainting UNet for {family} can't be loaded from {source!r}: {exc}") from None
            if int(model.config.in_channels) != 9:
                raise ValueError(
                    f"the inpainting UNet for {family} at {source!r} has {model.config.in_channels} input channels, "
                    "not 9: it is not an inpainting model"
                )
            model = model.to(self.device)
            self._load_seconds += time.perf_counter() - started
            self._controlnet_loads += 1
            self._inpaint_unet_models[family] = model
        return model

    def _make_variant(self, entry: _Entry, mode: str, controlnet: str | None) -> Any:
        import diffusers

        sdxl = entry.spec.family == "sdxl"
        names = {
            ("img2img", False): "StableDiffusionImg2ImgPipeline",
            ("img2img", True): "StableDiffusionXLImg2ImgPipeline",
            ("txt2img-cn", False): "StableDiffusionControlNetPipeline",
            ("txt2img-cn", True): "StableDiffusionXLControlNetPipeline",
            ("img2img-cn", False): "StableDiffusionControlNetImg2ImgPipeline",
            ("img2img-cn", True): "StableDiffusionXLControlNetImg2ImgPipeline",
            ("inpaint", False): "StableDiffusionInpaintPipeline",
            ("inpaint", True): "StableDiffusionXLInpaintPipeline",
            ("inpaint-cn", False): "StableDiffusionControlNetInpaintPipeline",
            ("inpaint-cn", True): "StableDiffusionXLControlNetInpaintPipeline",
        }
        cls = getattr(diffusers, names[(mode + ("-cn" if controlnet else ""), sdxl)])
        extra: dict[str, Any] = {"controlnet": self._controlnet(controlnet)} if controlnet else {}
        if mode == "inpaint" and entry.spec.family in self.inpaint_unets:
            extra["unet"] = self._inpaint_unet(entry.spec.family)
        pipe = cls.from_pipe(entry.pipe, **extra)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _free_memory(self) -> None:
        import gc

        gc.collect()
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


# --- schedulers, prompts, images --------------------------------------------------------------------------------


#: Memory a render needs, per family, in GiB: the pipeline's weights and workspace, and each image of a batch at the
#: family's native size (classifier-free guidance doubles the UNet's batch; the VAE decode at full size dominates).
#: Conservative estimates from diffusers' half-precision pipelines with SDPA attention; an image of another size
#: counts in proportion to its pixels.
RENDER_MEMORY_GIB = {"sd15": (4.0, 1.0), "sdxl": (10.0, 4.0)}
NATIVE_SIDE = {"sd15": 512, "sdxl": 1024}
#: The largest batch of one render call (beyond it a GPU is busy already), and the batch on the CPU (batching buys
#: nothing there; 4 keeps the number of calls low).
MAX_RENDER_BATCH = 16
CPU_RENDER_BATCH = 4


def render_batch_size(family: str, gpu_memory_gib: float, width: int | None = None, height: int | None = None) -> int:
    """Images per render call for `family` at `width` × `height` (the native size when not given) on a GPU of
    `gpu_memory_gib` (0: the CPU, :data:`CPU_RENDER_BATCH`): the batch whose images fit in half the memory left
    beside the pipeline (:data:`RENDER_MEMORY_GIB`), between 1 and :data:`MAX_RENDER_BATCH`. On an 80 GB H100:
    16 for SD 1.5 at 512 px, 8 for SDXL at 1024 px."""
    if gpu_memory_gib <= 0:
        return CPU_RENDER_BATCH
    fixed, per_image = RENDER_MEMORY_GIB.get(family, RENDER_MEMORY_GIB["sdxl"])
    side = NATIVE_SIDE.get(family, 1024)
    pixels = ((width or side) * (height or side)) / (side * side)
    fits = int((gpu_memory_gib - fixed) * 0.5 / (per_image * max(pixels, 1e-3)))
    return max(1, min(fits, MAX_RENDER_BATCH))


def cache_memory_gib(cache: PipelineCache) -> float:
    """The memory of the cache's GPU in GiB (0 on the CPU)."""
    import torch

    device = torch.device(cache.device)
    if device.type != "cuda":
        return 0.0
    return torch.cuda.get_device_properties(device).total_memory / 2**30


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler `name` (one of :data:`SCHEDULERS`) built from the base model's scheduler config."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler

    if name == "dpmpp_2m_karras":
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        )
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(base_config)
    if name == "ddim":
        return DDIMScheduler.from_config(base_config)
    raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(sorted(SCHEDULERS))}")


def final_prompt(prompt: str, trigger_phrase: str) -> str:
    """`prompt` with ``{subject}`` replaced by `trigger_phrase`; without the placeholder the trigger phrase is
    prepended ("<trigger phrase>, <prompt>"). Without a trigger phrase (no identity: a group portrait's scene)
    the prompt as it is, ``{subject}`` saying "a person"."""
    if not trigger_phrase.strip():
        return prompt.replace("{subject}", "a person").strip()
    if "{subject}" in prompt:
        return prompt.replace("{subject}", trigger_phrase)
    prompt = prompt.strip()
    return f"{trigger_phrase}, {prompt}" if prompt else trigger_phrase


PROMPT_ENCODINGS = {"whole", "truncated"}


@dataclass
class PromptEmbeddings:
    """What :func:`encode_prompts` made: the pipeline's keyword arguments and the token counts (the start and
    end markers not counted) with the number of 77-position windows used."""

    kwargs: dict[str, Any]
    prompt_tokens: int
    negative_prompt_tokens: int
    windows: int


def _token_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)


def _windows(tokenizer: Any, ids: list[int], count: int) -> list[tuple[list[int], list[int]]]:
    """`ids` in `count` windows of 75 tokens, each with its markers and padded to 77: (token ids, attention mask).
    Windows past the end of `ids` are empty ones (the encoding of "")."""
    size = CHUNK_TOKENS
    rows = []
    for index in range(count):
        part = ids[index * size : (index + 1) * size]
        row = [tokenizer.bos_token_id, *part, tokenizer.eos_token_id]
        mask = [1] * len(row) + [0] * (size + 2 - len(row))
        rows.append((row + [tokenizer.pad_token_id] * (size + 2 - len(row)), mask))
    return rows


def encode_prompts(pipe: Any, family: str, prompt: str, negative_prompt: str, device: Any) -> PromptEmbeddings:
    """Encode `prompt` and `negative_prompt` whole, in windows of 75 tokens (see the module notes), for `pipe`
    (any SD 1.5 or SDXL pipeline of the cache). Call it with the adapters loaded: a text-encoder LoRA counts."""
    import torch

    sdxl = family == "sdxl"
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if sdxl:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    positive_ids = [_token_ids(tokenizer, prompt) for tokenizer, _ in pairs]
    negative_ids = [_token_ids(tokenizer, negative_prompt) for tokenizer, _ in pairs]
    zero_negative = sdxl and not negative_prompt and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    count = max(window_count(len(ids)) for ids in positive_ids + ([] if zero_negative else negative_ids))

    def encode(ids_per_encoder: list[list[int]]) -> tuple[Any, Any]:
        per_encoder = []
        pooled = None
        for (tokenizer, encoder), ids in zip(pairs, ids_per_encoder, strict=True):
            windows = []
            for index, (row, mask) in enumerate(_windows(tokenizer, ids, count)):
                tensor = torch.tensor([row], dtype=torch.long, device=device)
                if sdxl:
                    output = encoder(tensor, output_hidden_states=True)
                    if index == 0 and output[0].ndim == 2:  # the encoder with projection: its pooled embedding
                        pooled = output[0]
                    windows.append(output.hidden_states[-2])
                else:
                    use_mask = bool(getattr(encoder.config, "use_attention_mask", False))
                    attention = torch.tensor([mask], device=device) if use_mask else None
                    windows.append(encoder(tensor, attention_mask=attention)[0])
            per_encoder.append(torch.cat(windows, dim=1))
        embeds = torch.cat(per_encoder, dim=-1)
        dtype = (pipe.text_encoder_2 if sdxl else pipe.text_encoder).dtype
        return embeds.to(dtype=dtype, device=device), pooled

    prompt_embeds, pooled = encode(positive_ids)
    if zero_negative:
        negative_embeds, negative_pooled = torch.zeros_like(prompt_embeds), torch.zeros_like(pooled)
    else:
        negative_embeds, negative_pooled = encode(negative_ids)
    kwargs: dict[str, Any] = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_embeds}
    if sdxl:
        kwargs["pooled_prompt_embeds"] = pooled.to(dtype=pipe.text_encoder_2.dtype, device=device)
        kwargs["negative_pooled_prompt_embeds"] = negative_pooled.to(dtype=pipe.text_encoder_2.dtype, device=device)
    return PromptEmbeddings(
        kwargs=kwargs,
        prompt_tokens=max(len(ids) for ids in positive_ids),
        negative_prompt_tokens=max(len(ids) for ids in negative_ids),
        windows=count,
    )


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` as RGB at exactly `width` × `height` (scaled and centre-cropped, aspect ratio kept)."""
    return ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def edge_map(image: Image.Image, threshold: float = 0.2) -> Image.Image:
    """A canny-style edge map for the canny ControlNet, without OpenCV: light blur, Sobel gradient magnitude,
    normalised to its 99th percentile and thresholded at `threshold` → white edges on black, RGB."""
    import numpy as np
    from PIL import ImageFilter

    gray = np.asarray(image.convert("L").filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
    padded = np.pad(gray, 1, mode="edge")
    gx = (padded[:-2, 2:] + 2 * padded[1:-1, 2:] + padded[2:, 2:]) - (
        padded[:-2, :-2] + 2 * padded[1:-1, :-2] + padded[2:, :-2]
    )
    gy = (padded[2:, :-2] + 2 * padded[2:, 1:-1] + padded[2:, 2:]) - (
        padded[:-2, :-2] + 2 * padded[:-2, 1:-1] + padded[:-2, 2:]
    )
    magnitude = np.hypot(gx, gy)
    scale = float(np.percentile(magnitude, 99)) or 1.0
    edges = ((magnitude / scale) >= threshold).astype(np.uint8) * 255
    return Image.fromarray(edges, mode="L").convert("RGB")


def image_sha256(image: Image.Image) -> str:
    """Hash of an image's pixels (RGB bytes and size): identifies a prepared init/control image in a recipe."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


# --- LoRA files -------------------------------------------------------------------------------------------------


def _lora_bytes(source: Path | bytes, what: str) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    if path.is_dir():
        candidate = path / LORA_WEIGHT_NAME
        if not candidate.is_file():
            found = sorted(path.glob("*.safetensors"))
            if len(found) != 1:
                raise ValueError(f"the {what} LoRA folder holds no single .safetensors file")
            candidate = found[0]
        path = candidate
    if not path.is_file():
        raise ValueError(f"the {what} LoRA file does not exist")
    return path.read_bytes()


def _lora_label(path: Path) -> str:
    """A LoRA's name for people: the file's stem, or its folder's name for diffusers' default file name."""
    if path.is_dir() or path.name == LORA_WEIGHT_NAME:
        return path.name if path.is_dir() else path.parent.name
    return path.stem


def _lora_state_dict(data: bytes, what: str) -> dict[str, Any]:
    from safetensors.torch import load

    try:
        state = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"the {what} LoRA is not a readable safetensors file ({exc})") from None
    if not state:
        raise ValueError(f"the {what} LoRA is empty")
    return state


def _tuner_layers(pipe: Any) -> list[Any]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = []
    for name in getattr(pipe, "_lora_loadable_modules", ()):
        model = getattr(pipe, name, None)
        if model is not None:
            layers.extend(module for module in model.modules() if isinstance(module, BaseTunerLayer))
    return layers


def _load_adapter(pipe: Any, state: dict[str, Any], name: str, what: str, spec: BaseModelSpec) -> None:
    try:
        pipe.load_lora_weights(state, adapter_name=name)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"the {what} LoRA does not fit base model {spec.name!r} ({spec.family}): {str(exc)[:300]}"
        ) from None
    loaded = {adapter for adapters in pipe.get_list_adapters().values() for adapter in adapters}
    if name not in loaded:
        raise ValueError(f"the {what} LoRA holds no weights for base model {spec.name!r} ({spec.family})")


class _Adapters:
    """Loads the adapters of one render, fuses them, and always leaves the cached pipeline clean."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.names: list[str] = []
        self.fused = False
        self._originals: list[tuple[Any, Any, Any]] = []

    def load(self, items: Sequence[tuple[str, dict[str, Any], float, str]], spec: BaseModelSpec) -> None:
        if _has_adapters(self.pipe):  # never expected: a failed cleanup drops the pipeline from the cache
            log.warning("pipeline %s had LoRA adapters left over; unloading them", spec.name)
            self.pipe.unload_lora_weights()
        for name, state, _weight, what in items:
            self.names.append(name)
            _load_adapter(self.pipe, state, name, what, spec)
        if items:
            self.pipe.set_adapters([item[0] for item in items], [float(item[2]) for item in items])

    def fuse(self) -> None:
        """Fuse the active adapters into copies of the base weights, keeping the originals to put back exactly.

        Each LoRA layer's base weight (and bias) is replaced by a copy, then ``fuse_lora`` merges into the copies
        in place; one finiteness check over all fused weights follows (a broken LoRA fails with a message instead
        of rendering black images), with a single device sync rather than one per layer."""
        import torch

        if not self.names:
            return
        self._originals = []
        for layer in _tuner_layers(self.pipe):
            base = layer.get_base_layer()
            bias = getattr(base, "bias", None)
            self._originals.append((base, base.weight.data, bias.data if bias is not None else None))
            base.weight.data = base.weight.data.clone()
            if bias is not None:
                base.bias.data = bias.data.clone()
        self.fused = True
        self.pipe.fuse_lora(adapter_names=list(self.names), safe_fusing=False)
        checks = [torch.isfinite(base.weight).all() for base, _, _ in self._originals]
        if checks and not bool(torch.stack([check.to(checks[0].device) for check in checks]).all()):
            raise ValueError("a LoRA produced non-finite weights (NaN or infinity): the file is broken")

    def cleanup(self) -> None:
        try:
            if self.fused:
                self.pipe.unfuse_lora()
        finally:
            for base, weight, bias in self._originals:  # the original tensors, bit for bit
                base.weight.data = weight
                if bias is not None:
                    base.bias.data = bias
            self._originals = []
            self.fused = False
            if self.names or _has_adapters(self.pipe):
                self.pipe.unload_lora_weights()
            self.names = []


def _has_adapters(pipe: Any) -> bool:
    """Whether any LoRA-loadable component has peft adapters (diffusers and transformers set ``peft_config``)."""
    return any(
        getattr(getattr(pipe, name, None), "peft_config", None) for name in getattr(pipe, "_lora_loadable_modules", ())
    )


# --- rendering --------------------------------------------------------------------------------------------------


def _check(config: RenderConfig, spec: BaseModelSpec) -> tuple[int, int]:
    if config.scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {config.scheduler!r}: use one of {', '.join(sorted(SCHEDULERS))}")
    if not config.seeds:
        raise ValueError("no seeds: give one seed per image")
    if any(isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63 for seed in config.seeds):
        raise ValueError("seeds must be whole numbers from 0 to 2**63 - 1")
    if config.steps < 1 or config.batch_size < 1:
        raise ValueError("steps and batch size must be at least 1")
    for label, value in (("guidance", config.guidance), ("identity weight", config.identity_weight)):
        if not math.isfinite(value):
            raise ValueError(f"{label} must be a finite number")
    width = config.width or spec.native_resolution
    height = config.height or spec.native_resolution
    if width % 8 or height % 8 or width < 8 or height < 8:
        raise ValueError(f"width and height must be positive multiples of 8 (got {width}x{height})")
    count = len(config.seeds)
    for label, images in (
        ("init images", config.init_images),
        ("mask images", config.mask_images),
        ("control images", config.control_images),
    ):
        if images is not None and len(images) != count:
            raise ValueError(f"{label}: give one per seed ({len(images)} for {count} seeds)")
    if config.mask_images is not None and config.init_images is None:
        raise ValueError("inpainting needs one init image per seed beside each mask")
    if config.init_images is not None and config.init_image is not None:
        raise ValueError("give either one init image or one per seed, not both")
    if config.init_image is not None or config.init_images is not None:
        if not 0.0 < config.strength <= 1.0:
            raise ValueError("img2img strength must be above 0 and at most 1")
        if int(config.steps * config.strength) < 1:
            raise ValueError(f"{config.steps} steps at strength {config.strength} leave no denoising step")
    if config.prompt_encoding not in PROMPT_ENCODINGS:
        raise ValueError(f"unknown prompt encoding {config.prompt_encoding!r}: use one of {sorted(PROMPT_ENCODINGS)}")
    if config.controlnet is not None:
        if config.controlnet not in CONTROLNETS:
            raise ValueError(f"unknown ControlNet {config.controlnet!r}: use one of {sorted(CONTROLNETS)}")
        has_init = config.init_image is not None or config.init_images is not None
        no_control = config.control_image is None and config.control_images is None
        if no_control and (config.controlnet != "canny" or not has_init):
            raise ValueError(f"ControlNet {config.controlnet!r} needs a control image")
    return width, height


def _engine_versions() -> dict[str, str]:
    import diffusers
    import peft
    import torch

    return {"diffusers": diffusers.__version__, "peft": peft.__version__, "torch": torch.__version__}


def _load_identity_image(pipe: Any, identity: IdentityImage, cache: PipelineCache) -> None:
    """Load an identity adapter into `pipe` for one render, with its image encoder from the cache (loaded once per
    worker); render() unloads them from the pipeline afterwards."""
    if not hasattr(pipe, "load_ip_adapter"):
        raise ValueError(f"This pipeline ({type(pipe).__name__}) can't take an identity adapter.")
    pipe.register_modules(image_encoder=cache.image_encoder(identity.image_encoder))
    subfolder, _, weight_name = identity.weight_name.rpartition("/")
    pipe.load_ip_adapter(identity.source, subfolder=subfolder, weight_name=weight_name, image_encoder_folder=None)
    pipe.set_ip_adapter_scale(float(identity.scale))


def render(
    *,
    cache: PipelineCache,
    spec: BaseModelSpec,
    identity_lora: Path | bytes | None,
    trigger_phrase: str,
    config: RenderConfig,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> list[RenderedImage]:
    """Render one image per seed of `config` with `spec` and the client's identity LoRA (a safetensors file, a
    folder holding one, or its bytes; None renders the base model alone) at `config.identity_weight`.

    Raises ValueError for a config or LoRA that can't be rendered (message for people) and RenderCancelled when
    `should_cancel()` said stop. See the module notes for adapters, seeds, progress and reproducibility."""
    import torch

    width, height = _check(config, spec)
    cancelled = should_cancel or (lambda: False)
    if cancelled():
        raise RenderCancelled("cancelled before rendering")

    adapters: list[tuple[str, dict[str, Any], float, str]] = []
    adapter_recipe: list[dict[str, Any]] = []
    if identity_lora is not None:
        data = _lora_bytes(identity_lora, "identity")
        digest = hashlib.sha256(data).hexdigest()
        if config.identity_sha256 and digest != config.identity_sha256:
            raise ValueError("this digital double's LoRA is not the one the recipe was rendered with")
        adapters.append((IDENTITY_ADAPTER, _lora_state_dict(data, "identity"), config.identity_weight, "identity"))
        adapter_recipe.append({"name": IDENTITY_ADAPTER, "sha256": digest, "weight": float(config.identity_weight)})
        del data
    if config.style_lora is not None:
        style = config.style_lora
        data = _lora_bytes(style.path, "style")
        digest = hashlib.sha256(data).hexdigest()
        if style.sha256 and digest != style.sha256:
            raise ValueError(f"the style LoRA {Path(style.path).name!r} changed since the recipe was rendered")
        adapters.append((STYLE_ADAPTER, _lora_state_dict(data, "style"), style.weight, "style"))
        adapter_recipe.append(
            {
                "name": STYLE_ADAPTER,
                "label": _lora_label(Path(style.path)),
                "source": str(style.path),
                "sha256": digest,
                "weight": float(style.weight),
            }
        )
        del data

    per_seed = config.init_images is not None
    mode = "txt2img"
    if config.mask_images is not None:
        mode = "inpaint"
    elif config.init_image is not None or per_seed:
        mode = "img2img"
    prompt = final_prompt(config.prompt, trigger_phrase)
    init_image = fit_image(config.init_image, width, height) if config.init_image is not None else None
    init_images = [fit_image(image, width, height) for image in config.init_images] if per_seed else None
    masks = (
        [ImageOps.fit(mask.convert("L"), (width, height), Image.Resampling.BILINEAR) for mask in config.mask_images]
        if config.mask_images is not None
        else None
    )
    control_image = None
    control_images = None
    if config.controlnet is not None:
        if config.control_images is not None or (config.control_image is None and per_seed):
            sources = config.control_images if config.control_images is not None else config.init_images
            assert sources is not None  # _check
            control_images = [fit_image(source, width, height) for source in sources]
            if config.controlnet == "canny":
                control_images = [edge_map(image) for image in control_images]
        else:
            source = config.control_image if config.control_image is not None else config.init_image
            assert source is not None  # _check
            if config.controlnet == "pose":
                from engine.pose import pose_control_image

                source = pose_control_image(source)  # a photo becomes its skeleton; a skeleton stays
            control_image = fit_image(source, width, height)
            if config.controlnet == "canny":
                control_image = edge_map(control_image)

    starts = range(0, len(config.seeds), config.batch_size)
    batches = [config.seeds[i : i + config.batch_size] for i in starts]
    base_recipe: dict[str, Any] = {
        "recipe_version": RECIPE_VERSION,
        "base_model": {"name": spec.name, "family": spec.family, "is_demo": spec.is_demo},
        "adapters": adapter_recipe,
        "identity_weight": float(config.identity_weight) if identity_lora is not None else None,
        "prompt_template": config.prompt,
        "prompt": prompt,
        "negative_prompt": config.negative_prompt,
        "prompt_encoding": config.prompt_encoding,
        "scheduler": config.scheduler,
        "steps": config.steps,
        "guidance": float(config.guidance),
        "width": width,
        "height": height,
        "mode": mode,
        "img2img": init_image is not None or per_seed,
        "strength": float(config.strength) if init_image is not None or per_seed else None,
        "init_image_sha256": image_sha256(init_image) if init_image is not None else None,
        "controlnet": config.controlnet,
        "control_scale": float(config.control_scale) if config.controlnet else None,
        "control_image_sha256": image_sha256(control_image) if control_image is not None else None,
        "fused": bool(config.fuse and adapters),
        "device": str(cache.device),
        "dtype": str(cache.dtype).removeprefix("torch."),
        "engine": _engine_versions(),
        "more_like_me_step": 0,
    }
    if config.identity_image is not None:
        base_recipe["identity_image"] = {
            "adapter": config.identity_image.key,
            "scale": float(config.identity_image.scale),
            "image_sha256": image_sha256(config.identity_image.image),
        }

    results: list[RenderedImage] = []
    with cache.lock:
        pipe = cache.variant(spec, mode, config.controlnet)
        base_scheduler_config = cache.scheduler_config(spec)
        state = {"done": 0, "total": 0}
        manager = _Adapters(pipe)
        clean = False
        identity_image = config.identity_image
        try:
            if identity_image is not None:
                _load_identity_image(pipe, identity_image, cache)
            manager.load(adapters, spec)
            del adapters
            if config.fuse:
                manager.fuse()
            prompt_kwargs = _prompt_kwargs(pipe, spec, prompt, config, cache.device, base_recipe)
            for start, seeds in zip(starts, batches, strict=True):
                if cancelled():
                    raise RenderCancelled("cancelled between batches")

                def on_step(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                    if state["total"] == 0:
                        state["total"] = int(pipeline.num_timesteps) * len(batches)
                    state["done"] += 1
                    if progress is not None:
                        progress(min(state["done"], state["total"]), state["total"])
                    if cancelled():
                        raise RenderCancelled(f"cancelled at step {step + 1}")
                    return tensors

                pipe.scheduler = make_scheduler(config.scheduler, base_scheduler_config)
                kwargs: dict[str, Any] = {
                    **prompt_kwargs,
                    "num_inference_steps": config.steps,
                    "guidance_scale": config.guidance,
                    "num_images_per_prompt": len(seeds),
                    "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
                    "callback_on_step_end": on_step,
                    "output_type": "pil",
                }
                end = start + len(seeds)
                inits = init_images[start:end] if init_images is not None else None
                if init_image is not None or inits is not None:
                    kwargs["image"] = init_image if inits is None else inits
                    kwargs["strength"] = config.strength
                if masks is not None:
                    kwargs["mask_image"] = masks[start:end]
                controls = control_images[start:end] if control_images is not None else control_image
                if controls is not None:
                    kwargs["controlnet_conditioning_scale"] = config.control_scale
                    kwargs["image" if mode == "txt2img" else "control_image"] = controls
                if mode == "txt2img" or controls is not None or mode == "inpaint":
                    kwargs["width"], kwargs["height"] = width, height
                if identity_image is not None:
                    kwargs["ip_adapter_image"] = identity_image.image
                with torch.inference_mode():
                    images = pipe(**kwargs).images
                for offset, (seed, image) in enumerate(zip(seeds, images, strict=True)):
                    recipe = copy.deepcopy(base_recipe)
                    recipe.update(seed=seed, batch_size=len(seeds))
                    if inits is not None:
                        recipe["init_image_sha256"] = image_sha256(inits[offset])
                    results.append(RenderedImage(image=image, seed=seed, recipe=recipe))
            clean = True
        finally:
            try:
                manager.cleanup()
                if identity_image is not None and getattr(pipe, "image_encoder", None) is not None:
                    pipe.unload_ip_adapter()  # the cached pipeline's own attention processors again
            except Exception:
                log.exception("could not remove the adapters from %s; dropping the cached pipeline", spec.name)
                cache.discard(spec)
                if clean:
                    raise
    return results


def _prompt_kwargs(
    pipe: Any, spec: BaseModelSpec, prompt: str, config: RenderConfig, device: Any, recipe: dict[str, Any]
) -> dict[str, Any]:
    """The pipeline's prompt arguments for `config` (embeddings of the whole prompts, or the legacy strings), with
    the token counts written into `recipe`."""
    import torch

    if config.prompt_encoding == "truncated":
        tokens = len(_token_ids(pipe.tokenizer, prompt))
        negative_tokens = len(_token_ids(pipe.tokenizer, config.negative_prompt))
        if max(tokens, negative_tokens) > CHUNK_TOKENS:
            log.warning(
                "reproducing a recipe made before prompts were encoded whole: the pipeline reads only the first "
                "%d tokens of a %d-token prompt / %d-token negative prompt",
                CHUNK_TOKENS,
                tokens,
                negative_tokens,
            )
        recipe.update(prompt_tokens=tokens, negative_prompt_tokens=negative_tokens)
        return {"prompt": prompt, "negative_prompt": config.negative_prompt or None}
    with torch.inference_mode():
        encoded = encode_prompts(pipe, spec.family, prompt, config.negative_prompt, device)
    recipe.update(prompt_tokens=encoded.prompt_tokens, negative_prompt_tokens=encoded.negative_prompt_tokens)
    return encoded.kwargs


# --- recipes ----------------------------------------------------------------------------------------------------


def config_from_recipe(
    recipe: dict[str, Any],
    *,
    init_image: Image.Image | None = None,
    control_image: Image.Image | None = None,
    style_path: Path | None = None,
) -> RenderConfig:
    """The RenderConfig that renders `recipe`'s image again: same seed, prompt template, scheduler, steps,
    guidance, size, weights, fusing — with the same base model, the same identity LoRA (checked by its sha256)
    and the same trigger phrase, on the same device, the pixels are identical. An img2img/ControlNet recipe
    needs its init/control image back (checked by pixel hash); a style LoRA is found at the recipe's source
    unless `style_path` says where it is now (checked by sha256). Raises ValueError for a recipe it can't use."""
    try:
        version = recipe.get("recipe_version")
        if version != RECIPE_VERSION:
            raise ValueError(f"unsupported recipe version {version!r}")
        adapters = {item["name"]: item for item in recipe.get("adapters") or []}
        style = adapters.get(STYLE_ADAPTER)
        identity = adapters.get(IDENTITY_ADAPTER)
        width, height = int(recipe["width"]), int(recipe["height"])
        if recipe.get("img2img"):
            if init_image is None:
                raise ValueError("this recipe is img2img: give its reference image back")
            if image_sha256(fit_image(init_image, width, height)) != recipe.get("init_image_sha256"):
                raise ValueError("this is not the reference image the recipe was rendered with")
        if (
            recipe.get("controlnet")
            and control_image is None
            and not (recipe["controlnet"] == "canny" and recipe.get("img2img"))
        ):
            raise ValueError(f"this recipe uses ControlNet {recipe['controlnet']!r}: give its control image back")
        return RenderConfig(
            prompt=str(recipe["prompt_template"]),
            negative_prompt=str(recipe.get("negative_prompt") or ""),
            scheduler=str(recipe["scheduler"]),
            steps=int(recipe["steps"]),
            guidance=float(recipe["guidance"]),
            width=width,
            height=height,
            seeds=[int(recipe["seed"])],
            identity_weight=float(identity["weight"]) if identity else 1.0,
            batch_size=1,
            style_lora=_style_ref(style, style_path),
            init_image=init_image if recipe.get("img2img") else None,
            strength=float(recipe["strength"]) if recipe.get("strength") is not None else 0.6,
            controlnet=recipe.get("controlnet"),
            control_image=control_image if recipe.get("controlnet") else None,
            control_scale=float(recipe.get("control_scale") or 1.0),
            fuse=bool(recipe.get("fused", True)),
            identity_sha256=identity["sha256"] if identity else None,
            # recipes from before prompts were encoded whole have no such key: they were cut at 75 tokens
            prompt_encoding=str(recipe.get("prompt_encoding") or "truncated"),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"incomplete recipe: {exc}") from None


def _style_ref(style: dict[str, Any] | None, path: Path | None) -> AdapterRef | None:
    if style is None:
        return None
    return AdapterRef(path=Path(path or style["source"]), weight=float(style["weight"]), sha256=style["sha256"])


def more_like_me(
    recipe: dict[str, Any],
    *,
    step: float = 0.15,
    cap: float = 1.6,
    strength_step: float = 0.1,
    min_strength: float = 0.3,
) -> dict[str, Any]:
    """A new recipe: the same seed and everything else, the identity weight one `step` higher (at most `cap`)
    and, for img2img, the strength one `strength_step` lower (at least `min_strength`): closer to the double.
    A weight already at or above the cap (or a strength at or below the floor) stays; when nothing can move the
    returned recipe equals the input (see :func:`can_go_more_like_me`). ``more_like_me_step`` counts the steps."""
    new = copy.deepcopy(recipe)
    identity = next((item for item in new.get("adapters") or [] if item.get("name") == IDENTITY_ADAPTER), None)
    if identity is None:
        raise ValueError("this image was rendered without a digital double: there is no likeness to raise")
    changed = False
    weight = float(identity["weight"])
    raised = round(max(weight, min(weight + step, cap)), 4)
    if raised != weight:
        identity["weight"] = raised
        new["identity_weight"] = raised
        changed = True
    if new.get("img2img") and new.get("strength") is not None:
        strength = float(new["strength"])
        lowered = round(min(strength, max(strength - strength_step, min_strength)), 4)
        if lowered != strength:
            new["strength"] = lowered
            changed = True
    for entry in new.get("stages") or []:  # the face pass (engine.portrait) has its own identity weight
        if isinstance(entry, dict) and entry.get("name") == "face_pass" and entry.get("identity_weight") is not None:
            face = float(entry["identity_weight"])
            face_raised = round(max(face, min(face + step, cap)), 4)
            if face_raised != face:
                entry["identity_weight"] = face_raised
                changed = True
    if changed:
        new["more_like_me_step"] = int(recipe.get("more_like_me_step") or 0) + 1
    return new


def can_go_more_like_me(recipe: dict[str, Any], *, cap: float = 1.6, min_strength: float = 0.3) -> bool:
    """Whether :func:`more_like_me` would still change `recipe` (False at the cap, or without an identity)."""
    try:
        return more_like_me(recipe, cap=cap, min_strength=min_strength) != recipe
    except ValueError:
        return False


def recipe_summary(recipe: dict[str, Any]) -> str:
    """One line for people: "DPM++ 2M Karras, 30 steps, CFG 7, seed 42, identity 1.15, 512x512"."""
    parts = [
        SCHEDULER_LABELS.get(recipe.get("scheduler", ""), str(recipe.get("scheduler"))),
        f"{recipe.get('steps')} steps",
        f"CFG {recipe.get('guidance'):g}" if isinstance(recipe.get("guidance"), int | float) else "",
        f"seed {recipe.get('seed')}",
    ]
    if recipe.get("identity_weight") is not None:
        parts.append(f"identity {recipe['identity_weight']:g}")
    if recipe.get("img2img"):
        parts.append(f"img2img strength {recipe.get('strength')}")
    if recipe.get("controlnet"):
        parts.append(f"ControlNet {recipe['controlnet']}")
    parts.append(f"{recipe.get('width')}x{recipe.get('height')}")
    return ", ".join(part for part in parts if part)
