"""The portrait pipeline: base render → face pass → upscale → output check, one code path for every portrait.

Plain Python (no Django). :func:`render_portraits` takes what :func:`engine.rendering.render` takes plus a
:class:`Stages` (each stage optional) and returns one :class:`Portrait` per seed: the final image, the faces it
regenerated (boxes in output pixels), the recipe naming every stage with its settings (and its seconds), or the
message of the stage that failed it. Runs, previews, "more like me" and re-rolls all come through here.

Stages
    **base**: the render (txt2img, img2img or ControlNet) of every seed, in batches — or, with a
    :class:`TemplatePhoto`, the photographer's photo itself, resized to the long side asked for.
    **template photo**: the client's face — the largest face found in the photo (``faces``: more) — is re-rendered
    by inpainting (the "inpaint" variant of
    the cached pipeline: the operator's 9-channel inpainting UNet when configured, else the base UNet with
    latent blending), in a square crop around it at the model's native size, with the client's identity at
    the render's identity weight and the template's strength, optionally guided by a canny ControlNet of the same
    crop (the head's pose and light stay); each is pasted back through the feathered mask
    (:mod:`engine.masks`): every pixel outside the masks is the photo's, bit for bit.
    **face pass** (ADetailer's idea): the largest face found in the base render (``faces``: more) is cropped
    with a margin, re-rendered
    by img2img at the native size with the identity LoRA at the face pass's own weight and denoise, and pasted
    back through the feathered mask. Pixels outside the masks are unchanged.
    **upscale**: to the long side asked for (:mod:`engine.upscale`): enlarged (the operator's super-resolution
    model, else Lanczos), then refined tile by tile by img2img at a low denoise; face boxes are scaled with it.

Batching
    The face pass and the upscale render **across the call's portraits**: every portrait's face crops (and then
    every portrait's tiles) go into one render call, each crop or tile with its own seed and CPU generator (derived
    from its portrait's seed), in batches of :func:`engine.rendering.render_batch_size` (by family, size and GPU
    memory). A crop's image depends on its own seed and inputs only; rendered in another batch (its portrait alone,
    as a recipe re-renders it) it differs only in the last bits of the arithmetic, as any image rendered in another
    batch (on the tiny model on the CPU: at most 2 of 255 in under 1 % of the values; tested). A batched call that
    fails is rendered again portrait by portrait, so a failure still fails only its own portrait.
    **output check**: the caller's check (``check(image) -> report`` with ``ok`` and ``findings``, e.g.
    :func:`engine.safety.check_safety`); an image that fails it is withheld: its pixels are dropped here.

A stage that fails (an exception other than cancellation) fails that portrait with a message naming the stage;
the other portraits go on. The base render failing fails the call (ValueError, as :func:`render`).
Progress is reported as ``progress(fraction 0..1, message)`` over all stages; ``should_cancel`` is checked in
every render (``RenderCancelled``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from engine import masks as masks_
from engine import upscale as upscale_
from engine.checkpoints import BaseModelSpec
from engine.rendering import (
    CancelCheck,
    PipelineCache,
    RenderCancelled,
    RenderConfig,
    cache_memory_gib,
    image_sha256,
    render,
    render_batch_size,
)

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
Detector = Callable[[Image.Image], list[Box]]
StageProgress = Callable[[float, str], None]

STAGE_NAMES = ("base", "template_photo", "face_pass", "upscale", "output_check")
STAGE_LABELS = {
    "base": "base render",
    "template_photo": "template photo",
    "face_pass": "face pass",
    "upscale": "upscale",
    "output_check": "output check",
}
#: Faces smaller than this (pixels, the box's larger side) are left alone: nothing to re-render.
MIN_FACE_PX = 8
#: How many faces a face pass or a template photo regenerates by default: the largest one, the client's. A
#: render or a photo may show other people (a partner, a crowd): giving every face the client's identity would
#: clone them; group portraits (one double per face) are their own feature.
CLIENT_FACES = 1
#: The most faces one image's face pass or template photo may regenerate.
MAX_FACES = 8


@dataclass
class FacePass:
    """Re-render each face at the native size. `identity_weight` and `denoise` (img2img strength) are the face
    pass's own; `steps` None: the render's."""

    identity_weight: float = 1.0
    denoise: float = 0.4
    mask: masks_.MaskSettings = field(default_factory=masks_.MaskSettings)
    steps: int | None = None
    faces: int = CLIENT_FACES


@dataclass
class Upscale:
    """Enlarge to `long_side` px; `denoise` 0 enlarges only (no tiled re-render). `sr_model`: the operator's
    super-resolution model file (None: Lanczos). `tile` None: the model's native size."""

    long_side: int
    denoise: float = 0.25
    sr_model: Path | None = None
    tile: int | None = None
    steps: int | None = None


@dataclass
class TemplatePhoto:
    """The photographer's photo: its faces are regenerated with the client's identity by inpainting at
    `strength`; `controlnet` ("canny") guides them by the photo's own edges when the worker has it."""

    image: Image.Image
    mask: masks_.MaskSettings = field(default_factory=masks_.MaskSettings)
    strength: float = 0.75
    controlnet: str | None = None
    faces: int = CLIENT_FACES


@dataclass
class Stages:
    """The optional stages of one call. `long_side` of a template photo resizes the photo (no re-render)."""

    face_pass: FacePass | None = None
    upscale: Upscale | None = None
    template_photo: TemplatePhoto | None = None
    check: Callable[[Image.Image], Any] | None = None
    check_name: str = ""


@dataclass
class Portrait:
    """One seed's outcome: `image` (None when withheld or failed), `faces` (boxes in output pixels of the faces
    regenerated), `recipe`, and `error` (the failed stage's message) or `withheld` (the output check's
    findings)."""

    seed: int
    recipe: dict[str, Any]
    image: Image.Image | None = None
    faces: list[Box] = field(default_factory=list)
    error: str | None = None
    failed_stage: str | None = None
    withheld: list[tuple[str, float]] | None = None

    @property
    def ok(self) -> bool:
        return self.image is not None


class StageFailed(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


def detect_faces(image: Image.Image) -> list[Box]:
    """Faces in `image`, largest first (dlib's HOG detector, :func:`engine.faces.detect_faces`)."""
    from engine.faces import detect_faces as dlib_faces

    return [(b.left, b.top, b.right, b.bottom) for b in dlib_faces(image)]


def _faces(detector: Detector, image: Image.Image, limit: int = CLIENT_FACES) -> list[Box]:
    """The `limit` largest faces the detector finds (it reports them largest first), clipped to the image."""
    width, height = image.size
    found = []
    for left, top, right, bottom in detector(image):
        left, top, right, bottom = max(0, left), max(0, top), min(width, right), min(height, bottom)
        if max(right - left, bottom - top) >= MIN_FACE_PX and right > left and bottom > top:
            found.append((int(left), int(top), int(right), int(bottom)))
    return found[: max(1, min(limit, MAX_FACES))]


class _Progress:
    def __init__(self, callback: StageProgress | None, shares: dict[str, float]) -> None:
        self.callback = callback
        total = sum(shares.values()) or 1.0
        self.shares = {name: share / total for name, share in shares.items()}
        self.done = 0.0

    def stage(self, name: str, portions: int = 1) -> Callable[[int, int], None]:
        """A render progress callback covering 1/`portions` of stage `name`'s share."""
        share = self.shares.get(name, 0.0) / max(portions, 1)
        start = self.done
        self.done += share
        label = STAGE_LABELS[name].capitalize()

        def report(done: int, total: int) -> None:
            if self.callback is not None:
                self.callback(min(1.0, start + share * done / max(total, 1)), f"{label}: step {done} of {total}")

        return report

    def note(self, message: str) -> None:
        if self.callback is not None:
            self.callback(min(1.0, self.done), message)


def _stage_config(base: RenderConfig, *, batch: int | None = None, **changes: Any) -> RenderConfig:
    """A stage's render config from the base render's: `changes` applied, no base inputs, `batch` images per call
    (at least the base render's batch; 4 when not given)."""
    config = copy.copy(base)
    config.init_image = None
    config.control_image = None
    config.controlnet = None
    config.init_images = config.mask_images = config.control_images = None
    for key, value in changes.items():
        setattr(config, key, value)
    config.batch_size = max(1, min(max(base.batch_size, batch or 4), len(config.seeds)))
    return config


def stage_steps(config: RenderConfig, steps: int | None, denoise: float) -> int:
    """A stage's denoising steps: its own, else the render's, and at least enough for one step at `denoise`
    (img2img runs ``int(steps * denoise)`` of them)."""
    return int(steps or max(config.steps, math.ceil(1.0 / max(denoise, 1e-3))))


def _stage_seed(seed: int, stage: int, index: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + index + 1) % (2**63)


def render_portraits(
    *,
    cache: PipelineCache,
    spec: BaseModelSpec,
    identity_lora: Path | bytes | None,
    trigger_phrase: str,
    config: RenderConfig,
    stages: Stages | None = None,
    progress: StageProgress | None = None,
    should_cancel: CancelCheck | None = None,
    detector: Detector | None = None,
) -> list[Portrait]:
    """Render one portrait per seed of `config` through the stages (see the module notes)."""
    stages = stages or Stages()
    detect = detector or detect_faces
    lora = identity_lora
    if isinstance(lora, Path | str):
        from engine.rendering import _lora_bytes

        lora = _lora_bytes(Path(lora), "identity")  # read once, not once per stage
    shares = {"base": 0.0 if stages.template_photo else 1.0}
    if stages.template_photo is not None:
        shares["template_photo"] = 1.0
    if stages.face_pass is not None and stages.template_photo is None:
        shares["face_pass"] = 0.3
    if stages.upscale is not None and stages.template_photo is None and stages.upscale.denoise > 0:
        shares["upscale"] = 0.8
    meter = _Progress(progress, shares)
    run = _runner(cache, spec, lora, trigger_phrase, should_cancel)

    if stages.template_photo is not None:
        portraits = _template_photo(run, meter, spec, config, stages, detect)
    else:
        started = time.perf_counter()
        base = run(config, meter.stage("base"))
        seconds = round((time.perf_counter() - started) / max(len(base), 1), 3)
        portraits = []
        for item in base:
            recipe = item.recipe
            recipe["stages"] = [{"name": "base", "mode": recipe.get("mode"), "seconds": seconds}]
            portraits.append(Portrait(seed=item.seed, recipe=recipe, image=item.image))
        side = min(int(base[0].recipe["width"]), int(base[0].recipe["height"])) if base else 0
        batch = render_batch_size(spec.family, cache_memory_gib(cache), side, side)
        face = stages.face_pass
        _batched(
            run,
            meter,
            "face_pass",
            config,
            portraits,
            lambda p: _face_work(config, face, detect, p) if face is not None else _disabled(p, "face_pass"),
            batch,
        )
        up = stages.upscale
        _batched(
            run,
            meter,
            "upscale",
            config,
            portraits,
            lambda p: _upscale_work(config, up, p, cache) if up is not None else _disabled(p, "upscale"),
            batch,
        )
    _finish(stages, portraits)
    return portraits


Runner = Callable[[RenderConfig, Callable[[int, int], None]], list[Any]]


def _runner(
    cache: PipelineCache,
    spec: BaseModelSpec,
    lora: bytes | None,
    trigger_phrase: str,
    should_cancel: CancelCheck | None,
) -> Runner:
    """A stage's render call: `config` and a progress report in, images out, with this identity (or none)."""

    def run(cfg: RenderConfig, report: Callable[[int, int], None]) -> list[Any]:
        return render(
            cache=cache,
            spec=spec,
            identity_lora=lora,
            trigger_phrase=trigger_phrase,
            config=cfg,
            progress=report,
            should_cancel=should_cancel,
        )

    return run


def _finish(stages: Stages, portraits: list[Portrait]) -> None:
    """The output check on each portrait, then its output size and face boxes in the recipe."""
    for portrait in portraits:
        _stage(portrait, "output_check", lambda p: _check(stages, p))
    for portrait in portraits:
        size = portrait.image.size if portrait.image is not None else None
        portrait.recipe["output_size"] = list(size) if size else None
        portrait.recipe["faces"] = [list(box) for box in portrait.faces]


def _stage(portrait: Portrait, name: str, action: Callable[[Portrait], None]) -> None:
    """Run one stage on one portrait; a failure fails this portrait only, with the stage named."""
    if portrait.image is None:
        return
    started = time.perf_counter()
    try:
        action(portrait)
    except RenderCancelled:
        raise
    except StageFailed as exc:
        _fail(portrait, exc.stage, exc.message)
    except Exception as exc:  # one portrait's stage: the others go on
        log.warning("portrait stage %s failed for seed %s", name, portrait.seed, exc_info=True)
        _fail(portrait, name, str(exc) or exc.__class__.__name__)
    else:
        for entry in portrait.recipe.get("stages", []):
            if entry.get("name") == name and "seconds" not in entry:
                entry["seconds"] = round(time.perf_counter() - started, 3)


def _fail(portrait: Portrait, stage: str, message: str) -> None:
    portrait.image = None
    portrait.failed_stage = stage
    portrait.error = f"The {STAGE_LABELS.get(stage, stage)} failed: {message}"


# --- template photo ---------------------------------------------------------------------------------------------


def prepare_photo(image: Image.Image, long_side: int | None) -> Image.Image:
    """The template photo as the portraits' canvas: upright RGB, resized (Lanczos) to `long_side` when given."""
    photo = ImageOps.exif_transpose(image).convert("RGB")
    if long_side and max(photo.size) != long_side:
        photo = photo.resize(upscale_.target_size(photo.size, long_side), Image.Resampling.LANCZOS)
    return photo


def _template_photo(
    run: Callable[..., list[Any]],
    meter: _Progress,
    spec: BaseModelSpec,
    config: RenderConfig,
    stages: Stages,
    detect: Detector,
) -> list[Portrait]:
    settings = stages.template_photo
    assert settings is not None
    started = time.perf_counter()
    photo = prepare_photo(settings.image, stages.upscale.long_side if stages.upscale else None)
    faces = _faces(detect, photo, settings.faces)
    if not faces:
        raise ValueError("no face was found in the template photo: use a photo where the face is clearly visible")
    native = config.width or spec.native_resolution
    crops = [masks_.crop_box(box, settings.mask, photo.size) for box in faces]
    inits, mask_crops = [], []
    for box, crop in zip(faces, crops, strict=True):
        mask = masks_.face_mask(photo.size, [box], settings.mask)
        inits.append(photo.crop(crop).resize((native, native), Image.Resampling.LANCZOS))
        crop_mask = Image.fromarray((mask[crop[1] : crop[3], crop[0] : crop[2]] * 255).round().astype("uint8"))
        mask_crops.append(crop_mask.resize((native, native), Image.Resampling.BILINEAR))
    prepared = round(time.perf_counter() - started, 3)
    photo_sha = image_sha256(ImageOps.exif_transpose(settings.image).convert("RGB"))
    portraits = []
    for seed in config.seeds:
        # One render per seed (its faces together): a portrait renders the same again on its own, and a
        # failure fails that portrait only.
        portrait = Portrait(seed=seed, recipe={}, image=photo, faces=list(faces))
        holder: dict[str, Any] = {}

        def inpaint(item: Portrait, seed: int = seed, holder: dict[str, Any] = holder) -> None:
            cfg = _stage_config(
                config,
                seeds=[_stage_seed(seed, 1, index) for index in range(len(faces))],
                width=native,
                height=native,
                init_images=inits,
                mask_images=mask_crops,
                strength=settings.strength,
                steps=stage_steps(config, None, settings.strength),
                controlnet=settings.controlnet,
            )
            rendered = run(cfg, meter.stage("template_photo", len(config.seeds)))
            image = photo
            for result, crop, box in zip(rendered, crops, faces, strict=True):
                image = _paste(image, result.image, crop, box, settings.mask)
            item.image = image
            holder["recipe"] = rendered[0].recipe

        item_started = time.perf_counter()
        _stage(portrait, "template_photo", inpaint)
        entry = {
            "name": "template_photo",
            "photo_sha256": photo_sha,
            "strength": float(settings.strength),
            "steps": stage_steps(config, None, settings.strength),
            "mask": asdict(settings.mask),
            "controlnet": settings.controlnet,
            "max_faces": settings.faces,
            "faces": len(faces),
            "seconds": round(time.perf_counter() - item_started, 3),
        }
        recipe = template_photo_recipe(
            holder.get("recipe") or {},
            seed=seed,
            native=native,
            photo=photo,
            prepared=prepared,
            entry=entry,
            stages=stages,
        )
        portrait.recipe = recipe
        portraits.append(portrait)
    return portraits


def template_photo_recipe(
    rendered: dict[str, Any],
    *,
    seed: int,
    native: int,
    photo: Image.Image,
    prepared: float,
    entry: dict[str, Any],
    stages: Stages,
) -> dict[str, Any]:
    """The recipe of a portrait made in a template photo (one person's, or a group's): the faces' render recipe
    (`rendered`) as a template photo's, its stages the photo (`prepared` seconds), the inpainting (`entry`), and the
    face pass and upscale it has no need of."""
    recipe = copy.deepcopy(rendered)
    recipe.update(
        seed=seed,
        mode="template_photo",
        img2img=False,
        strength=None,
        init_image_sha256=None,
        width=native,
        height=native,
        controlnet=None,
        control_scale=None,
        control_image_sha256=None,
    )
    recipe["stages"] = [
        {"name": "base", "mode": "template_photo", "photo_size": list(photo.size), "seconds": prepared},
        entry,
        {"name": "face_pass", "enabled": False, "why": "the template photo's faces are inpainted at full size"},
        {
            "name": "upscale",
            "enabled": False,
            "why": "the template photo is resized to the long side (Lanczos); only its faces are re-rendered",
            "long_side": stages.upscale.long_side if stages.upscale else None,
        },
    ]
    return recipe


def _paste(image: Image.Image, rendered: Image.Image, crop: Box, box: Box, mask: masks_.MaskSettings) -> Image.Image:
    """`rendered` (a crop re-rendered at the native size) put back over `crop` of `image` through the face's
    feathered mask: pixels outside the mask stay `image`'s exactly."""
    width, height = crop[2] - crop[0], crop[3] - crop[1]
    layer = image.copy()
    layer.paste(rendered.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), crop[:2])
    return masks_.composite(image, layer, masks_.face_mask(image.size, [box], mask))


# --- batched stages ---------------------------------------------------------------------------------------------


@dataclass
class _Work:
    """One portrait's part of a batched stage: the render's settings (`changes`, shared by the portraits batched
    together), its inputs and seeds, and `finish(images)`, which puts the rendered images to use."""

    portrait: Portrait
    entry: dict[str, Any]
    changes: dict[str, Any]
    seeds: list[int]
    inits: list[Image.Image]
    finish: Callable[[list[Image.Image]], None]

    def key(self) -> tuple[Any, ...]:
        return tuple(sorted(self.changes.items()))


def _disabled(portrait: Portrait, name: str) -> None:
    portrait.recipe["stages"].append({"name": name, "enabled": False})


def _batched(
    run: Runner,
    meter: _Progress,
    name: str,
    config: RenderConfig,
    portraits: list[Portrait],
    prepare: Callable[[Portrait], _Work | None],
    batch: int,
) -> None:
    """Stage `name` on every portrait: each one's inputs are prepared on its own (`prepare`: a failure fails that
    portrait), then all of them are rendered in one call (one per distinct setting), and each portrait's images
    are put to use on their own. A portrait's stage seconds are its own preparation and finishing plus its share
    (by images) of the render call. A failed call is rendered again portrait by portrait."""
    works: list[_Work] = []
    for portrait in portraits:
        holder: dict[str, _Work | None] = {}
        _stage(portrait, name, lambda p, holder=holder: holder.update(work=prepare(p)))
        work = holder.get("work")
        if work is not None and portrait.image is not None:
            works.append(work)
    if not works:
        return
    groups: dict[tuple[Any, ...], list[_Work]] = {}
    for work in works:
        groups.setdefault(work.key(), []).append(work)
    for group in groups.values():
        report = meter.stage(name, len(groups))
        cfg = _stage_config(
            config,
            batch=batch,
            seeds=[seed for work in group for seed in work.seeds],
            init_images=[image for work in group for image in work.inits],
            **group[0].changes,
        )
        started = time.perf_counter()
        try:
            rendered = run(cfg, report)
        except RenderCancelled:
            raise
        except Exception:
            if len(group) == 1:
                _stage(group[0].portrait, name, lambda p, work=group[0]: _render_alone(run, config, work, batch))
                continue
            log.warning("a batched %s failed; rendering its %d portraits one by one", name, len(group), exc_info=True)
            for work in group:
                _stage(work.portrait, name, lambda p, work=work: _render_alone(run, config, work, batch))
            continue
        seconds = time.perf_counter() - started
        offset = 0
        for work in group:
            images = [item.image for item in rendered[offset : offset + len(work.seeds)]]
            offset += len(work.seeds)
            finishing = time.perf_counter()
            _stage(work.portrait, name, lambda p, work=work, images=images: work.finish(images))
            share = seconds * len(work.seeds) / max(len(cfg.seeds), 1) + time.perf_counter() - finishing
            work.entry["seconds"] = round(float(work.entry.get("seconds", 0.0)) + share, 3)


def _render_alone(run: Runner, config: RenderConfig, work: _Work, batch: int) -> None:
    cfg = _stage_config(config, batch=batch, seeds=work.seeds, init_images=work.inits, **work.changes)
    work.finish([item.image for item in run(cfg, lambda done, total: None)])


# --- face pass --------------------------------------------------------------------------------------------------


def _face_pass(
    run: Callable[..., list[Any]],
    meter: _Progress,
    config: RenderConfig,
    stages: Stages,
    detect: Detector,
    portrait: Portrait,
    index: int,
) -> None:
    """The face pass of one portrait on its own (its faces in one call)."""
    settings = stages.face_pass
    if settings is None:
        _disabled(portrait, "face_pass")
        return
    work = _face_work(config, settings, detect, portrait)
    if work is not None:
        cfg = _stage_config(config, seeds=work.seeds, init_images=work.inits, **work.changes)
        work.finish([item.image for item in run(cfg, meter.stage("face_pass", len(config.seeds)))])


def _face_work(config: RenderConfig, settings: FacePass, detect: Detector, portrait: Portrait) -> _Work | None:
    """The face pass's inputs for `portrait` (its recipe entry written), or None when it has no face."""
    assert portrait.image is not None
    entry: dict[str, Any] = {
        "name": "face_pass",
        "identity_weight": float(settings.identity_weight),
        "denoise": float(settings.denoise),
        "mask": asdict(settings.mask),
        "steps": stage_steps(config, settings.steps, settings.denoise),
        "max_faces": settings.faces,
    }
    portrait.recipe["stages"].append(entry)
    try:
        faces = _faces(detect, portrait.image, settings.faces)
    except Exception as exc:
        raise StageFailed("face_pass", f"the faces could not be found ({exc})") from None
    entry["faces"] = len(faces)
    if not faces:
        return None
    native = min(int(portrait.recipe["width"]), int(portrait.recipe["height"]))
    crops = [masks_.crop_box(box, settings.mask, portrait.image.size) for box in faces]

    def finish(images: list[Image.Image]) -> None:
        image = portrait.image
        assert image is not None
        for rendered, crop, box in zip(images, crops, faces, strict=True):
            image = _paste(image, rendered, crop, box, settings.mask)
        portrait.image = image
        portrait.faces = list(faces)

    return _Work(
        portrait=portrait,
        entry=entry,
        changes={
            "width": native,
            "height": native,
            "identity_weight": float(settings.identity_weight),
            "strength": float(settings.denoise),
            "steps": entry["steps"],
        },
        seeds=[_stage_seed(portrait.seed, 2, i) for i in range(len(faces))],
        inits=[portrait.image.crop(crop).resize((native, native), Image.Resampling.LANCZOS) for crop in crops],
        finish=finish,
    )


# --- upscale ----------------------------------------------------------------------------------------------------


def _upscale(
    run: Callable[..., list[Any]],
    meter: _Progress,
    config: RenderConfig,
    stages: Stages,
    portrait: Portrait,
    index: int,
    cache: PipelineCache,
) -> None:
    """The upscale of one portrait on its own (its tiles in calls of their own)."""
    settings = stages.upscale
    if settings is None:
        _disabled(portrait, "upscale")
        return
    work = _upscale_work(config, settings, portrait, cache)
    if work is not None:
        cfg = _stage_config(config, seeds=work.seeds, init_images=work.inits, **work.changes)
        work.finish([item.image for item in run(cfg, meter.stage("upscale", len(config.seeds)))])


def _upscale_work(config: RenderConfig, settings: Upscale, portrait: Portrait, cache: PipelineCache) -> _Work | None:
    """The upscale's tiles for `portrait` (its recipe entry written; enlarged by the SR model or Lanczos), or None
    when nothing is re-rendered (denoise 0: the portrait is enlarged here)."""
    assert portrait.image is not None
    image = portrait.image
    size = upscale_.target_size(image.size, settings.long_side)
    native = min(int(portrait.recipe["width"]), int(portrait.recipe["height"]))
    tile = int(settings.tile or native)
    overlap = max(8, tile // 8)
    entry: dict[str, Any] = {
        "name": "upscale",
        "long_side": int(settings.long_side),
        "size": list(size),
        "denoise": float(settings.denoise),
        "tile": tile,
        "overlap": overlap,
        "steps": stage_steps(config, settings.steps, settings.denoise or 1.0),
        "enlarge": "lanczos",
    }
    portrait.recipe["stages"].append(entry)
    if settings.sr_model is not None:
        model = upscale_.super_resolution(settings.sr_model, cache.device)
        entry["enlarge"] = "model"
        entry["sr_model"] = {
            "file": Path(settings.sr_model).name,
            "architecture": model.architecture,
            "scale": model.scale,
            "sha256": model.sha256,
        }
        enlarged = model.upscale_to(image, size)
    else:
        enlarged = image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image.copy()
    scale_x, scale_y = size[0] / image.width, size[1] / image.height

    def done(final: Image.Image) -> None:
        portrait.faces = [
            (round(b[0] * scale_x), round(b[1] * scale_y), round(b[2] * scale_x), round(b[3] * scale_y))
            for b in portrait.faces
        ]
        portrait.image = final

    if settings.denoise <= 0:
        done(enlarged)
        return None
    boxes = upscale_.tile_boxes(size, tile, overlap)
    entry["tiles"] = len(boxes)
    tiles = [enlarged.crop(box) for box in boxes]

    def finish(images: list[Image.Image]) -> None:
        refined = [
            rendered.crop((0, 0, tile_image.width, tile_image.height))
            for rendered, tile_image in zip(images, tiles, strict=True)
        ]
        done(upscale_.blend_tiles(size, boxes, refined, overlap))

    return _Work(
        portrait=portrait,
        entry=entry,
        changes={"width": tile, "height": tile, "strength": float(settings.denoise), "steps": entry["steps"]},
        seeds=[_stage_seed(portrait.seed, 3, i) for i in range(len(boxes))],
        inits=[_pad(tile_image, tile) for tile_image in tiles],
        finish=finish,
    )


def _pad(image: Image.Image, tile: int) -> Image.Image:
    """A tile smaller than the render size (an image smaller than a tile) padded by edge replication."""
    if image.size == (tile, tile):
        return image
    import numpy as np

    pixels = np.asarray(image.convert("RGB"))
    padded = np.pad(pixels, ((0, tile - pixels.shape[0]), (0, tile - pixels.shape[1]), (0, 0)), mode="edge")
    return Image.fromarray(padded, mode="RGB")


# --- output check -----------------------------------------------------------------------------------------------


def _check(stages: Stages, portrait: Portrait) -> None:
    if stages.check is None:
        return
    assert portrait.image is not None
    report = stages.check(portrait.image)
    findings = [(str(f.label), round(float(f.score), 2)) for f in getattr(report, "findings", ())]
    portrait.recipe["stages"].append({"name": "output_check", "detector": stages.check_name, "ok": bool(report.ok)})
    if not report.ok:
        portrait.image = None
        portrait.withheld = findings


# --- recipes ----------------------------------------------------------------------------------------------------


def stage_entries(recipe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A recipe's stages by name (a recipe from before stages: only "base")."""
    return {entry["name"]: entry for entry in recipe.get("stages") or [] if isinstance(entry, dict)}


def stages_from_recipe(
    recipe: dict[str, Any], *, photo: Image.Image | None = None, sr_model: Path | None = None
) -> Stages:
    """The stages that render `recipe`'s portrait again (with its template photo given back, checked by its pixel
    hash; and the operator's super-resolution model if the recipe used one). ValueError for what can't be."""
    entries = stage_entries(recipe)
    stages = Stages()
    face = entries.get("face_pass")
    if face and face.get("enabled", True):
        stages.face_pass = FacePass(
            identity_weight=float(face["identity_weight"]),
            denoise=float(face["denoise"]),
            mask=masks_.MaskSettings(**face.get("mask", {})),
            steps=int(face["steps"]) if face.get("steps") else None,
            faces=int(face.get("max_faces") or CLIENT_FACES),
        )
    up = entries.get("upscale")
    if up and up.get("enabled", True):
        if up.get("enlarge") == "model" and sr_model is None:
            raise ValueError("this portrait was enlarged by a super-resolution model this worker doesn't have")
        stages.upscale = Upscale(
            long_side=int(up["long_side"]),
            denoise=float(up["denoise"]),
            tile=int(up["tile"]) if up.get("tile") else None,
            steps=int(up["steps"]) if up.get("steps") else None,
            sr_model=sr_model if up.get("enlarge") == "model" else None,
        )
    elif up and up.get("long_side"):
        stages.upscale = Upscale(long_side=int(up["long_side"]), denoise=0.0)
    template = entries.get("template_photo")
    if template:
        if photo is None:
            raise ValueError("this portrait was made in a template photo: give the photo back")
        if image_sha256(ImageOps.exif_transpose(photo).convert("RGB")) != template.get("photo_sha256"):
            raise ValueError("this is not the template photo the portrait was made in")
        stages.template_photo = TemplatePhoto(
            image=photo,
            mask=masks_.MaskSettings(**template.get("mask", {})),
            strength=float(template["strength"]),
            controlnet=template.get("controlnet"),
            faces=int(template.get("max_faces") or CLIENT_FACES),
        )
    return stages


def stages_summary(recipe: dict[str, Any]) -> str:
    """One line for people: "Face pass (1 face) · Upscaled to 3000×2000 (tiled re-render, denoise 0.25)"; ""
    for a recipe from before stages."""
    entries = stage_entries(recipe)
    parts = []
    photo = entries.get("template_photo")
    if photo:
        faces = int(photo.get("faces") or 0)
        parts.append(f"Template photo ({faces} face{'s' if faces != 1 else ''} regenerated)")
    face = entries.get("face_pass")
    if face and face.get("enabled", True):
        faces = int(face.get("faces") or 0)
        parts.append(f"Face pass ({faces} face{'s' if faces != 1 else ''})")
    up = entries.get("upscale")
    size = recipe.get("output_size")
    if up and up.get("enabled", True) and size:
        how = "super-resolution model" if up.get("enlarge") == "model" else "Lanczos"
        refine = f", tiled re-render at {up.get('denoise')}" if float(up.get("denoise") or 0) > 0 else ""
        asked = f"; the template asks for {up['asked']} px" if up.get("asked") else ""
        parts.append(f"Upscaled to {size[0]}×{size[1]} ({how}{refine}{asked})")
    elif size and photo:
        parts.append(f"{size[0]}×{size[1]}")
    check = entries.get("output_check")
    if check and check.get("ok"):
        parts.append("Output checked")
    return " · ".join(parts)
