"""The engine's job kinds, on the `gpu` cluster: thin wrappers that load the job's rows, call the engine
(engine: no Django), write the results and report progress.

- "double.train": the accepted photos of a set (face crops, else originals) → an identity LoRA and centroid,
  stored encrypted; then the set's originals and face crops are deleted (clients' after-training hook).
- "portraits.render": a double + a render config (or "more like me" / a re-roll of a portrait) → ranked Portraits.
- "runs.render_item": one template version of a render run → Portraits with thumbnails, watermarked previews,
  likeness, ranks and picks (generation/runs.py, docs/runs.md).

Every generated image is checked for explicit content (:func:`screen_outputs`, once per image, on the CPU) before
anything is scored or stored: an explicit one is withheld, never stored, and the job's result counts it.

Imported by jobs/jobs.py (jobs autodiscovery). torch, diffusers and the engine's ML modules are imported
inside the handlers only: CUDA is initialised in the worker process that runs a job, never in the cluster's
parent (tests/jobs/test_no_torch_import.py). The pipeline cache lives for the worker process.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from clients.models import PhotoSet
from clients.services import purge_photo_set_files
from engine import group as group_engine
from engine import instant as engine_instant
from engine import masks, portrait, rendering
from engine.images import PhotoRejected, encode_clean, load_photo
from engine.rendering import AdapterRef, PipelineCache
from generation import doubles, groups, portraits, runs, training_checkpoints
from generation.models import DigitalDouble, Portrait, PortraitSubject, RenderRunItem, RunSubject
from jobs.registry import Charge, JobAbandoned, JobCancelled, JobContext, JobError, job_handler
from templates_app import base_models

log = structlog.get_logger("generation.jobs")

# Progress is written at most this often (each write is one UPDATE), and cancellation checked as often.
PROGRESS_INTERVAL_SECONDS = 1.0

_PIPELINE_CACHE: Any = None


def pipeline_cache() -> Any:
    """The worker process's pipeline cache (engine.rendering.PipelineCache), made on first use."""
    global _PIPELINE_CACHE
    if _PIPELINE_CACHE is None:
        _PIPELINE_CACHE = PipelineCache(
            device=settings.ENGINE_DEVICE or None, controlnets=dict(settings.ENGINE_CONTROLNETS or {}) or None
        )
    return _PIPELINE_CACHE


class _Throttle:
    """Calls progress/cancellation checks against the database at most every PROGRESS_INTERVAL_SECONDS, and
    turns JobCancelled/JobAbandoned (raised by the job context) into the engine's `should_cancel() -> True`,
    remembering which one it was so the handler can raise it again outside the engine."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.last_progress = 0.0
        self.last_check = 0.0
        self.stop: BaseException | None = None

    def progress(self, pct: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.stop is not None or (not force and now - self.last_progress < PROGRESS_INTERVAL_SECONDS):
            return
        self.last_progress = now
        try:
            self.ctx.progress(pct, message)
        except JobAbandoned as exc:
            self.stop = exc

    def should_cancel(self) -> bool:
        if self.stop is not None:
            return True
        now = time.monotonic()
        if now - self.last_check < PROGRESS_INTERVAL_SECONDS:
            return False
        self.last_check = now
        try:
            self.ctx.check_cancelled()
        except (JobCancelled, JobAbandoned) as exc:
            self.stop = exc
            return True
        return False

    def raise_stop(self) -> None:
        if self.stop is not None:
            raise self.stop
        raise JobCancelled(f"Job {self.ctx.job.pk} was cancelled")


def _double(ctx: JobContext) -> DigitalDouble:
    try:
        double_id = int(ctx.payload.get("double_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no digital double.") from None
    double = DigitalDouble.objects.select_related("photo_set").filter(pk=double_id).first()
    if double is None:
        raise JobError("The digital double no longer exists.")
    return double


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"about {seconds} s left"
    return f"about {round(seconds / 60)} min left"


def _minutes(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"


def train_message(step: int, total: int, loss: float | None, eta: float | None) -> str:
    """ "Step 120 of 800 · loss 0.083 · about 2 min left"."""
    parts = [f"Step {step} of {total}"]
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if eta is not None:
        parts.append(_duration(eta))
    return " · ".join(parts)


def _load_accepted_photos(photo_set: PhotoSet, *, prefer: str, purpose: str) -> list[Any]:
    """The accepted photos of the set from storage as RGB PIL images: each photo's `prefer` file ("face_crop" or
    "original"), else its other one; a file missing or unreadable is skipped and logged (`<purpose>_photo_...`)."""
    from PIL import Image

    other = "original" if prefer == "face_crop" else "face_crop"
    images = []
    for photo in doubles.accepted_photos(photo_set=photo_set):
        preferred = getattr(photo, prefer)
        field = preferred if preferred and preferred.name else getattr(photo, other)
        if not field or not field.name:
            continue
        try:
            with field.storage.open(field.name, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, OSError):
            log.warning(f"{purpose}_photo_missing", photo_id=photo.pk)
            continue
        try:
            images.append(load_photo(data).image)
        except PhotoRejected:
            try:
                images.append(Image.open(io.BytesIO(data)).convert("RGB"))
            except OSError:
                log.warning(f"{purpose}_photo_unreadable", photo_id=photo.pk)
    return images


def _load_training_images(photo_set: PhotoSet) -> list[Any]:
    """The accepted photos' face crops (else originals) from storage, as RGB PIL images."""
    return _load_accepted_photos(photo_set, prefer="face_crop", purpose="training")


# --- What each GPU kind costs (jobs.registry: billing reserves it when a job is queued) ---------------------------


def _family(payload: dict[str, Any]) -> str:
    double = DigitalDouble.objects.filter(pk=payload.get("double_id")).only("family").first()
    return (double.family if double is not None else "") or "sd15"


def training_cost(payload: dict[str, Any]) -> Charge:
    """One training on the double's model family ("train_sd15", "train_sdxl")."""
    return Charge(item=f"train_{_family(payload)}", units=1, fallback="train_sd15")


def render_cost(payload: dict[str, Any]) -> Charge:
    """One image per seed of the config ("more like me" and re-rolls render one); a group portrait's, one per
    person in it."""
    config = payload.get("config") or {}
    units = len(config.get("seeds") or []) or 1
    people = _people(payload)
    if people:
        return Charge(
            item=f"render_group_person_{_family(payload)}", units=units * people, fallback="render_image_sd15"
        )
    return Charge(item=f"render_image_{_family(payload)}", units=units, fallback="render_image_sd15")


def _people(payload: dict[str, Any]) -> int:
    try:
        return max(0, int(payload.get("people") or 0))
    except (TypeError, ValueError):
        return 0


def run_item_cost(payload: dict[str, Any]) -> Charge:
    """The run item's images, on its double's model family; a group run's item is charged per person portrayed
    ("render_group_person_sd15": each face is a render of its own, the scene one more)."""
    item = RenderRunItem.objects.filter(pk=payload.get("item_id")).only("images").first()
    units = max(int(item.images) if item is not None else 1, 1)
    people = _people(payload)
    if people:
        return Charge(
            item=f"render_group_person_{_family(payload)}", units=units * people, fallback="render_image_sd15"
        )
    return Charge(item=f"render_image_{_family(payload)}", units=units, fallback="render_image_sd15")


def images_rendered(result: dict[str, Any]) -> int | None:
    """A render job's result counts the images it rendered (withheld ones included: the GPU did that work); a
    group item's units are its images times its people (what run_item_cost charged per unit)."""
    images = result.get("images")
    if not isinstance(images, int) or isinstance(images, bool):
        return None
    people = result.get("people")
    return images * people if isinstance(people, int) and people > 0 else images


# --- Which base model a job runs on (jobs/affinity.py: claimed by an idle worker that has it loaded) ----------


def job_base_model(payload: dict[str, Any]) -> str | None:
    """The base model (its name, the pipeline cache's key) a render job loads: an instant portrait's from its
    payload; "more like me" and re-rolls the parent's recipe's; a run item its template version's (a test render
    its double's). None when the payload names nothing it can find (the handler then says what is wrong)."""
    if payload.get("base_model"):
        return str(payload["base_model"])
    for key in ("more_like_me_of", "reroll_of"):
        if payload.get(key) is not None:
            recipe = Portrait.objects.filter(pk=payload[key]).values_list("recipe", flat=True).first() or {}
            name = (recipe.get("base_model") or {}).get("name") if isinstance(recipe, dict) else None
            return str(name) if name else _double_model(payload)
    if payload.get("item_id") is not None:
        row = (
            RenderRunItem.objects.filter(pk=payload["item_id"])
            .values_list("template_version__base_model", "run__double__base_model")
            .first()
        )
        return (row[0] or row[1] or None) if row else None
    return _double_model(payload)


def _double_model(payload: dict[str, Any]) -> str | None:
    if payload.get("double_id") is None:
        return None
    return DigitalDouble.objects.filter(pk=payload["double_id"]).values_list("base_model", flat=True).first() or None


def worker_models() -> dict[str, Any]:
    """This worker's pipeline cache for its beacon (jobs.workers.register_worker_state_hook): the base models it
    has loaded and how many cold loads it made. Read without the cache's lock (a load holds it for seconds and the
    beacon must not wait): a list taken while a load changes it is simply read at the next beat."""
    cache = _PIPELINE_CACHE
    if cache is None:
        return {"loaded": [], "loads": 0}
    try:
        stats = cache.stats  # lock-free
    except RuntimeError:  # the entries changed while read
        return {}
    return {"loaded": list(stats["loaded"]), "loads": int(stats["loads"])}


def _restore_checkpoint(double: DigitalDouble, folder: Path) -> int | None:
    """The latest checkpoint in shared storage, copied into the work folder when it is newer than the local ones
    (the job ran further on another host); its step, or None. Storage that can't be read costs the head start,
    not the job."""
    try:
        return training_checkpoints.restore_latest(double=double, work_dir=folder)
    except Exception as exc:  # any storage backend's error: train from what the work folder has
        log.warning("checkpoint_restore_failed", double_id=double.pk, error=str(exc))
        return None


def _share_checkpoint(double: DigitalDouble, step: int, path: Path) -> None:
    """The engine's on_checkpoint: copy the checkpoint to shared storage (encrypted). A failed copy is logged and
    training goes on (the local checkpoint still serves a retry on this host). When the double was deleted
    meanwhile, what this attempt stored is deleted at once (delete_double may have run before the upload)."""
    try:
        training_checkpoints.upload(double=double, step=step, folder=path)
    except Exception as exc:  # any storage backend's error
        log.warning("checkpoint_upload_failed", double_id=double.pk, step=step, error=str(exc))
    if not DigitalDouble.objects.filter(pk=double.pk).exists():
        training_checkpoints.delete_all(double=double)


@job_handler(
    doubles.TRAIN_KIND,
    cluster="gpu",
    cost=training_cost,
    description="Trains a client's digital double (identity LoRA).",
)
def train_double(ctx: JobContext) -> dict[str, Any]:
    """Train the double named in the payload. Resumes from the last checkpoint of an earlier attempt (the work
    folder is stable); cancellable between steps; a double already trained only finishes its clean-up."""
    double = _double(ctx)
    photo_set = double.photo_set
    folder = doubles.work_dir(double)
    if double.status == DigitalDouble.Status.READY:
        # An earlier attempt stored the double and died before (or while) cleaning up: finish the clean-up.
        if photo_set is not None and photo_set.status == PhotoSet.Status.COLLECTING:
            purge_photo_set_files(photo_set=photo_set, kind="after_training", performed_by=ctx.job.created_by)
        shutil.rmtree(folder, ignore_errors=True)
        training_checkpoints.delete_all(double=double)
        return {"double_id": double.pk, "already_trained": True}
    if photo_set is None:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError("The photo set of this digital double no longer exists.")
    if photo_set.status != PhotoSet.Status.COLLECTING:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError("The photos of this set were deleted before training: upload a new set.")

    ctx.progress(0, "Loading the photos")
    images = _load_training_images(photo_set)
    minimum = int(settings.INTAKE_MIN_PHOTOS)
    if len(images) < minimum:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError(f"Only {len(images)} accepted photos could be read; a digital double needs {minimum}.")
    doubles.set_status(double=double, status=DigitalDouble.Status.TRAINING)

    from engine import training

    try:
        spec = base_models.get_model(double.base_model, enabled_only=False)
    except base_models.UnknownBaseModel as exc:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError(exc.message) from None
    ctx.progress(1, f"Loading the base model {spec.display_name}")
    spec = base_models.ensure_available(spec)
    overrides = dict(double.config or {})
    steps = overrides.pop("steps", None) or base_models.train_steps(spec)
    config = training.TrainConfig(trigger=double.trigger, class_word=double.class_word, steps=steps, **overrides)
    throttle = _Throttle(ctx)
    restored = _restore_checkpoint(double, folder)
    if restored:
        ctx.progress(1, f"Continuing from the checkpoint of step {restored} (shared storage)")

    def progress(p: Any) -> None:
        total = max(int(p.total or 0), 1)
        pct = 2 + 95 * min(int(p.step), total) / total
        throttle.progress(pct, p.message or train_message(p.step, total, p.loss, p.eta_seconds), force=p.step == total)

    try:
        result = training.train_identity_lora(
            spec=spec,
            images=images,
            work_dir=folder,
            config=config,
            progress=progress,
            should_cancel=throttle.should_cancel,
            device=settings.ENGINE_DEVICE or None,
            on_checkpoint=lambda step, path: _share_checkpoint(double, step, path),
        )
    except training.TrainingCancelled:
        # The work folder stays: retrying the job resumes from its last checkpoint.
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        throttle.raise_stop()
    except training.TrainingFailed as exc:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError(str(exc) or "Training failed.") from None
    except Exception:
        if DigitalDouble.objects.filter(pk=double.pk).exists():
            doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            training_checkpoints.delete_all(double=double)
        raise

    ctx.progress(98, "Encrypting and storing the double")
    metrics = {
        "steps": result.steps,
        "best_step": result.best_step,
        "scores": {str(step): round(float(score), 2) for step, score in (result.scores or {}).items()},
        "seconds": round(float(result.seconds), 1),
        "resumed_from": result.resumed_from,
        "batch_size": result.batch_size,
        "photos": len(images),
    }
    try:
        lora_bytes = Path(result.lora_path).read_bytes()
        doubles.save_training_result(double=double, lora_bytes=lora_bytes, centroid=result.centroid, metrics=metrics)
    except doubles.DoubleError as exc:  # erased meanwhile
        shutil.rmtree(folder, ignore_errors=True)
        training_checkpoints.delete_all(double=double)
        raise JobError(exc.message) from None
    receipt = purge_photo_set_files(photo_set=photo_set, kind="after_training", performed_by=ctx.job.created_by)
    shutil.rmtree(folder, ignore_errors=True)
    training_checkpoints.delete_all(double=double)
    ctx.progress(100, f"Digital double ready ({metrics['steps']} steps in {_minutes(metrics['seconds'])})")
    log.info("double_ready", double_id=double.pk, receipt_id=receipt.pk, steps=metrics["steps"])
    return {"double_id": double.pk, "receipt_id": receipt.pk, **metrics}


def _read_file(field: Any, missing: str) -> bytes:
    """A stored file's bytes, or JobError(`missing`) when storage no longer has it."""
    if not field or not field.name:
        raise JobError(missing)
    try:
        with field.storage.open(field.name, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError):
        raise JobError(missing) from None


def _template_inputs(version: Any, folder: Path) -> dict[str, Any]:
    """What a template version adds to a render: its style LoRA copied from private storage to a temporary file
    (AdapterRef with the version's weight and the LoRA's sha256, checked by the engine), and its reference image
    (img2img init image, or ControlNet pose/canny control image)."""
    from PIL import Image

    name = version.template.name
    inputs: dict[str, Any] = {}
    lora = version.style_lora
    if lora is not None:
        data = _read_file(
            lora.file,
            f"The style LoRA “{lora.name}” of “{name}” is missing from storage: upload it again, or choose another "
            "style for the template, then retry.",
        )
        path = folder / f"style-{lora.pk}.safetensors"
        path.write_bytes(data)
        inputs["style_lora"] = AdapterRef(path=path, weight=float(version.style_weight), sha256=lora.sha256 or None)
        inputs["style_path"] = path
    mode = version.reference_mode
    if mode:
        data = _read_file(
            version.reference_image, f"The reference image of “{name}” is missing from storage: edit the template."
        )
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except OSError:
            raise JobError(f"The reference image of “{name}” can't be read: edit the template.") from None
        image = image.convert("RGB")
        if mode == "img2img":
            inputs.update(init_image=image, strength=float(version.strength))
        elif mode == "photo":
            inputs["template_photo"] = image
        else:
            if mode not in (settings.ENGINE_CONTROLNETS or {}):
                raise JobError(f"“{name}” needs the ControlNet {mode!r}, which this platform has not configured.")
            inputs.update(controlnet=mode, control_image=image)
    return inputs


def _spec_named(name: str) -> Any:
    try:
        return base_models.get_model(name, enabled_only=False)
    except base_models.UnknownBaseModel as exc:
        raise JobError(exc.message) from None


def _identity_lora(double: DigitalDouble) -> bytes:
    try:
        return doubles.load_lora_bytes(double)
    except doubles.DoubleError as exc:
        raise JobError(exc.message) from None


def _run_pipeline(
    ctx: JobContext, *, spec: Any, config: Any, label: str, what: str, call: Callable[..., list[Any]]
) -> list[Any]:
    """`call(progress=, should_cancel=)` (an engine pipeline) with the model's step count, progress 0-90
    ("<label> · face pass: step 3 of 12") and cancellation; JobError("This <what> can't be made: ...") for a config
    or LoRA the engine refuses (its message is for people)."""
    config.steps = base_models.render_steps(spec, config.steps)
    throttle = _Throttle(ctx)

    def progress(fraction: float, message: str) -> None:
        throttle.progress(90 * fraction, f"{label} · {message}", force=fraction >= 1.0)

    try:
        made = call(progress=progress, should_cancel=throttle.should_cancel)
    except rendering.RenderCancelled:
        throttle.raise_stop()
    except ValueError as exc:
        raise JobError(f"This {what} can't be made: {exc}.") from None
    if throttle.stop is not None:
        throttle.raise_stop()
    return made


def _render(
    ctx: JobContext, *, spec: Any, double: DigitalDouble, config: Any, stages: Any, label: str, lora: bytes
) -> list[Any]:
    """Render through the engine's portrait pipeline (engine.portrait: base render or template photo, face pass,
    upscale), progress 0-90, cancellable (_run_pipeline). A stage failing one portrait fails that portrait only:
    it comes back with its `error`."""

    def call(**callbacks: Any) -> list[Any]:
        return portrait.render_portraits(
            cache=pipeline_cache(),
            spec=spec,
            identity_lora=lora,
            trigger_phrase=double.trigger_phrase,
            config=config,
            stages=stages,
            **callbacks,
        )

    return _run_pipeline(ctx, spec=spec, config=config, label=label, what="render", call=call)


def _stages(order: RenderOrder, spec: Any, inputs: dict[str, Any]) -> Any:
    """The portrait pipeline's stages: the version's finishing settings (face pass, print size, template photo),
    or for an action on a portrait the stages its recipe names. The demo model's print size is capped and only
    enlarged, not re-rendered (runs.output_long_side, runs.upscale_denoise)."""
    sr_model = Path(settings.ENGINE_UPSCALER_MODEL) if settings.ENGINE_UPSCALER_MODEL else None
    canny = "canny" if "canny" in (settings.ENGINE_CONTROLNETS or {}) else None
    if order.parent is not None:
        try:
            return portrait.stages_from_recipe(
                order.parent.recipe or {}, photo=inputs.get("template_photo"), sr_model=sr_model
            )
        except ValueError as exc:
            raise JobError(f"This portrait can't be rendered again: {exc}.") from None
    version = order.version
    if version is None:
        return portrait.Stages()
    mask = masks.MaskSettings(margin=float(version.mask_margin), feather=float(version.mask_feather))
    stages = portrait.Stages()
    if version.face_pass:
        stages.face_pass = portrait.FacePass(
            identity_weight=float(version.face_identity_weight), denoise=float(version.face_denoise), mask=mask
        )
    long_side = runs.output_long_side(version, spec)
    if long_side:
        stages.upscale = portrait.Upscale(
            long_side=long_side, denoise=runs.upscale_denoise(version, spec), sr_model=sr_model
        )
    if inputs.get("template_photo") is not None:
        stages.template_photo = portrait.TemplatePhoto(
            image=inputs["template_photo"], mask=mask, strength=float(version.strength), controlnet=canny
        )
    return stages


def _failures(made: list[Any]) -> list[dict[str, Any]]:
    """The portraits a stage failed: seed, stage and message (the job's result keeps them for staff)."""
    return [
        {"seed": item.seed, "stage": item.failed_stage, "message": item.error}
        for item in made
        if item.image is None and item.error
    ]


#: The check every generated image passes before it is stored (ENGINE_OUTPUT_CHECK names another, e.g. in tests).
DEFAULT_OUTPUT_CHECK = "engine.safety.check_safety"

OUTPUT_CHECK_FAILED = (
    "The generated images could not be checked for explicit content, so none were kept: retry the job, and tell "
    "the platform's operator if it fails again."
)


def output_check() -> Callable[[Any], Any]:
    """The function that checks each generated image: the dotted path in `ENGINE_OUTPUT_CHECK` (read at each
    call), by default the intake's nudenet check, engine.safety.check_safety. It takes an RGB PIL image
    and returns a report whose `ok` is False for an explicit image (with `findings`: label, score)."""
    return import_string(getattr(settings, "ENGINE_OUTPUT_CHECK", None) or DEFAULT_OUTPUT_CHECK)


def screen_outputs(ctx: JobContext, rendered: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Check every rendered image for explicit content, once each, on the worker's CPU (nudenet's ONNX model),
    before anything is scored, encoded or stored. Returns the images that passed, in their order, and what the
    job's result records: ``{"checked", "withheld", "seconds"}``. A withheld image is dropped here, pixels and
    all (the caller keeps only the returned list); only its seed and the detector's labels are logged. The check
    failing (or not loading) is a JobError: nothing is stored unchecked."""
    started = time.perf_counter()
    kept: list[Any] = []
    withheld = 0
    reasons: list[dict[str, Any]] = []
    try:
        check = output_check()
        for entry in rendered:
            report = check(entry.image)
            if bool(report.ok):
                stage = {"name": "output_check", "detector": getattr(check, "__module__", ""), "ok": True}
                if isinstance(entry.recipe.get("stages"), list):
                    entry.recipe["stages"].append(stage)
                kept.append(entry)
                continue
            withheld += 1
            findings = [(str(f.label), round(float(f.score), 2)) for f in getattr(report, "findings", ())]
            reasons.append({"seed": entry.seed, "findings": [list(finding) for finding in findings]})
            log.warning("portrait_withheld", job_id=ctx.job.pk, seed=entry.seed, findings=findings)
    except Exception:  # any failure of the check (model missing, a bad setting, a broken image): fail closed
        log.exception("output_check_failed", job_id=ctx.job.pk)
        raise JobError(OUTPUT_CHECK_FAILED) from None
    seconds = time.perf_counter() - started
    return kept, {"checked": len(rendered), "withheld": withheld, "seconds": round(seconds, 3), "reasons": reasons}


def _safety_result(safety: dict[str, Any]) -> dict[str, Any]:
    """What a render job's result says about the check: the counts and, when some were withheld, the message."""
    result: dict[str, Any] = {"withheld": safety["withheld"], "safety": safety}
    if safety["withheld"]:
        result["withheld_message"] = runs.withheld_message(safety["withheld"])
    return result


def _ready_message(saved: int, withheld: int, failures: list[dict[str, Any]] | None = None) -> str:
    """ "3 portraits ready", with " · 1 image was withheld: it looked explicit" when some were, and
    " · 1 failed: The face pass failed: …" when a stage failed some."""
    message = f"{saved} portrait{'s' if saved != 1 else ''} ready"
    if withheld:
        message = f"{message} · {runs.withheld_message(withheld)}"
    if failures:
        message = f"{message} · {len(failures)} failed: {failures[0]['message']}"
    return message


def _score(double: DigitalDouble, rendered: list[Any]) -> tuple[list[Any], dict[int, int], list[int]]:
    """Likeness scores against the double's centroid, each image's rank (1 = best) and the rank order."""
    from engine import likeness

    reference = doubles.centroid(double)
    scores = [likeness.score_image(item.image, reference) for item in rendered]
    order = likeness.rank(scores)
    return scores, {index: position + 1 for position, index in enumerate(order)}, order


def _encode(image: Any, studio_text: str) -> tuple[bytes, bytes, bytes]:
    """Full-resolution PNG, 512 px WebP thumbnail and 1024 px watermarked JPEG preview, all metadata-free."""
    from generation.watermark import watermark

    png = encode_clean(image, format="PNG")
    thumbnail = encode_clean(image, format="WEBP", quality=85, max_side=THUMBNAIL_SIDE)
    preview = encode_clean(watermark(image, studio_text, max_side=PREVIEW_SIDE), format="JPEG", quality=85)
    return png, thumbnail, preview


def _run_recipe(recipe: dict[str, Any], version: Any) -> dict[str, Any]:
    """The engine's recipe with its template version, and the style LoRA named by its row instead of the
    temporary path it was rendered from."""
    recipe = dict(recipe)
    recipe["template_version"] = portraits.template_recipe(version)
    lora = version.style_lora
    adapters = []
    for adapter in recipe.get("adapters") or []:
        adapter = dict(adapter)
        if adapter.get("name") == "style" and lora is not None:
            adapter.update(source=f"style-lora:{lora.pk}", label=lora.name, style_lora_id=lora.pk)
        adapters.append(adapter)
    recipe["adapters"] = adapters
    return recipe


THUMBNAIL_SIDE = 512
PREVIEW_SIDE = 1024


@dataclass
class RenderOrder:
    """What one render job renders: a run item (a template's version, or a test render's unsaved version), or
    an action on a portrait ("more" like me, or a "reroll"), whose child joins the parent's item."""

    double: DigitalDouble
    item: RenderRunItem | None
    version: Any  # a TemplateVersion (saved, or unsaved for a test render), or None for a legacy test portrait
    parent: Portrait | None = None
    action: str = ""
    seeds: list[int] = field(default_factory=list)  # a legacy test render's (an item has its own)

    @property
    def name(self) -> str:
        return self.version.template.name if self.version is not None else runs.TEST_RENDER_NAME

    @property
    def template_item(self) -> bool:
        """A template's own item (not an action, not a test render): its images get picks and a timing."""
        return self.parent is None and self.version is not None and self.version.pk is not None


def _render_order(ctx: JobContext) -> RenderOrder:
    """The job's order, from its payload: `more_like_me_of` / `reroll_of` (a portrait action), else `item_id`
    (a run item), else a legacy `config` (a test render queued before test renders were runs)."""
    for key, action in (("more_like_me_of", "more"), ("reroll_of", "reroll")):
        parent_id = ctx.payload.get(key)
        if parent_id is None:
            continue
        double = _double(ctx)
        parent = (
            Portrait.objects.select_related(
                "template_version__template", "template_version__style_lora", "item__run__double"
            )
            .filter(pk=parent_id, double=double)
            .first()
        )
        if parent is None:
            raise JobError("The portrait to render again no longer exists.")
        version = runs.item_version(parent.item) if parent.item is not None else parent.template_version
        return RenderOrder(double=double, item=parent.item, version=version, parent=parent, action=action)
    if ctx.payload.get("item_id") is not None:
        item = _run_item(ctx)
        return RenderOrder(double=item.run.double, item=item, version=runs.item_version(item))
    double = _double(ctx)
    try:
        request = doubles.clean_render_config(ctx.payload.get("config") or {})
    except doubles.DoubleError as exc:
        raise JobError(exc.message) from None
    settings_ = request.as_payload()
    seeds = settings_.pop("seeds")
    version = runs.unsaved_version(double=double, settings=settings_, images=len(seeds))
    return RenderOrder(double=double, item=None, version=version, seeds=list(seeds))


def _render_config(ctx: JobContext, order: RenderOrder, inputs: dict[str, Any]) -> Any:
    """The engine's RenderConfig: the version's settings with the item's seeds, or the parent's recipe made
    "more like me" (same seed, more identity) or re-rolled (the payload's new seed)."""
    parent = order.parent
    if parent is not None:
        recipe = parent.recipe
        try:
            if order.action == "more":
                recipe = rendering.more_like_me(recipe)
            config = rendering.config_from_recipe(
                recipe,
                init_image=inputs.get("init_image"),
                control_image=inputs.get("control_image"),
                style_path=inputs.get("style_path"),
            )
        except ValueError as exc:
            raise JobError(f"This portrait can't be rendered again: {exc}.") from None
        if order.action == "reroll":
            try:
                config.seeds = [int(ctx.payload["seed"])]
            except (KeyError, TypeError, ValueError):
                raise JobError("This re-roll names no seed.") from None
        return config
    version = order.version
    if order.item is not None:
        seeds = [int(seed) for seed in order.item.seeds or []]
        if len(seeds) != order.item.images or not seeds:
            raise JobError("This render run item has no seeds to render.")
    else:
        seeds = list(order.seeds)
    return rendering.RenderConfig(
        prompt=version.prompt,
        negative_prompt=version.negative_prompt,
        scheduler=version.scheduler,
        steps=int(version.steps),
        guidance=float(version.guidance),
        width=version.width or None,
        height=version.height or None,
        seeds=seeds,
        identity_weight=float(version.identity_weight),
        batch_size=min(len(seeds), runs.render_batch_size()),
        style_lora=inputs.get("style_lora"),
        init_image=inputs.get("init_image"),
        strength=float(inputs.get("strength", 0.6)),
        controlnet=inputs.get("controlnet"),
        control_image=inputs.get("control_image"),
    )


def _model_of(order: RenderOrder) -> Any:
    """The base model spec: the parent's recipe's for an action, else the version's; it must fit the double."""
    if order.parent is not None:
        name = ((order.parent.recipe or {}).get("base_model") or {}).get("name") or order.double.base_model
        return _spec_named(name)
    spec = _spec_named(order.version.base_model)
    if runs.lora_family(family=spec.family, is_demo=spec.is_demo) != runs.double_family(order.double):
        raise JobError(
            f"“{order.name}” renders with {spec.display_name}, which this digital double's likeness doesn't fit."
        )
    return spec


def _run_item(ctx: JobContext) -> RenderRunItem:
    try:
        item_id = int(ctx.payload.get("item_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no render run item.") from None
    item = (
        RenderRunItem.objects.select_related(
            "run__double__studio", "template_version__template", "template_version__style_lora"
        )
        .filter(pk=item_id)
        .first()
    )
    if item is None:
        raise JobError("This render run (or its digital double) no longer exists.")
    return item


def render_portraits(ctx: JobContext) -> dict[str, Any]:
    """The one portrait pipeline's GPU handler. Renders the job's order (a run item: a template's version or a
    test render's unsaved version, with the seeds drawn when it started; or "more like me" / a re-roll of a
    portrait) with the double's identity LoRA and the version's style LoRA and reference image; checks every
    image for explicit content; scores likeness against the double's centroid; ranks (a template's item also
    marks its best RENDER_PICKS_PER_TEMPLATE as picks; an action's child takes its place in the parent's item);
    stores each portrait with its thumbnail, watermarked preview and recipe (portraits.store_portrait, the one
    writer). A failure fails this job only. Idempotent: portraits an earlier attempt of this job stored are
    replaced."""
    if _people(ctx.payload):
        return render_group_item(ctx)
    started = time.monotonic()
    loads_before = float((getattr(pipeline_cache(), "stats", {}) or {}).get("load_seconds", 0.0))
    order = _render_order(ctx)
    double, item, version, parent = order.double, order.item, order.version, order.parent
    if double.status != DigitalDouble.Status.READY:
        raise JobError("This digital double is not trained.")
    spec = _model_of(order)
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        inputs = _template_inputs(version, Path(tmp)) if version is not None else {}
        config = _render_config(ctx, order, inputs)
        stages = _stages(order, spec, inputs)
        if stages.template_photo is not None:
            config.width = config.height = None  # the photo's faces render at the model's native size
        ctx.progress(0, f"Loading {spec.display_name}")
        spec = base_models.ensure_available(spec)
        lora = _identity_lora(double)
        total_images = len(config.seeds)
        images_label = f"{total_images} image{'s' if total_images != 1 else ''}"
        label = f"“{order.name}”: {images_label}" if order.template_item else f"Rendering {images_label}"
        made = _render(ctx, spec=spec, double=double, config=config, stages=stages, label=label, lora=lora)
        del lora

    asked = int(getattr(version, "long_side", 0) or 0) if parent is None and version is not None else 0
    if stages.upscale is not None and asked > stages.upscale.long_side:
        for entry in made:  # the demo model's print size was capped: say what the template asked for
            for stage in entry.recipe.get("stages") or []:
                if stage.get("name") == "upscale":
                    stage["asked"] = asked
    failures = _failures(made)
    rendered = [entry for entry in made if entry.image is not None]
    if failures:
        log.warning("portraits_failed", job_id=ctx.job.pk, failures=failures)
    if not rendered:
        raise JobError(failures[0]["message"] if failures else "No portrait could be made.")

    if parent is not None:
        # The engine's fresh recipe counts no "more like me" steps: carry the parent's (one more for this one).
        steps = int((parent.recipe or {}).get("more_like_me_step") or 0) + (1 if order.action == "more" else 0)
        for entry in rendered:
            entry.recipe["more_like_me_step"] = steps
    ctx.progress(91, "Checking the images for explicit content")
    rendered, safety = screen_outputs(ctx, rendered)
    ctx.progress(92, "Scoring likeness")
    scores, rank_of, order_of_ranks = _score(double, rendered)
    picks: set[int] = set()
    if order.template_item:
        picks = portraits.choose_picks(order_of_ranks, [score.flagged for score in scores], runs.picks_per_template())
    ctx.progress(94, "Making thumbnails and watermarked previews")
    text = runs.watermark_text(double.studio)
    files = [_encode(entry.image, text) for entry in rendered]
    saved_version = version if version is not None and version.pk is not None else None
    saved: list[int] = []
    with transaction.atomic():
        locked = DigitalDouble.objects.select_for_update().filter(pk=double.pk).first()
        if locked is None or (item is not None and not RenderRunItem.objects.filter(pk=item.pk).exists()):
            raise JobError("The digital double or its render run was deleted while rendering.")
        for earlier in Portrait.objects.filter(job=ctx.job):  # an earlier attempt of this job
            doubles.delete_portrait(portrait=earlier)
        for index, entry in enumerate(rendered):
            png, thumbnail, preview = files[index]
            score = scores[index]
            joins_item = parent is not None and item is not None
            portrait = portraits.store_portrait(
                double=locked,
                job=ctx.job,
                item=item,
                version=saved_version,
                png=png,
                thumbnail=thumbnail,
                preview=preview,
                recipe=_run_recipe(entry.recipe, saved_version) if saved_version is not None else entry.recipe,
                likeness=score.likeness,
                flags=list(score.flags),
                rank=None if joins_item else rank_of.get(index),
                is_pick=index in picks,
                is_demo=spec.is_demo,
                parent=parent,
            )
            if joins_item:
                portraits.insert_rank(portrait=portrait)
            saved.append(portrait.pk)
    ctx.progress(100, _ready_message(len(saved), safety["withheld"], failures))
    stats = dict(getattr(pipeline_cache(), "stats", {}) or {})
    # "images" is what was rendered, withheld ones included: the GPU did that work, and credits count it.
    result: dict[str, Any] = {
        "double_id": double.pk,
        "portraits": saved,
        "images": total_images,
        **_safety_result(safety),
        "failed": failures,
        "pipeline_cache": stats,
    }
    if item is not None and parent is None:
        # What this item really took, whole job but the model load, per image-step at the native size: the next
        # estimates use it (runs.measured_seconds_per_step).
        seconds = time.monotonic() - started - max(0.0, float(stats.get("load_seconds", 0.0)) - loads_before)
        work = runs.item_work(version, total_images, spec)[0]
        timing = {
            "cost_key": runs.cost_key(spec),
            "seconds": round(seconds, 2),
            "seconds_per_step": round(seconds / work, 5) if work else None,
        }
        result.update(run_id=item.run_id, item_id=item.pk, picks=sorted(saved[i] for i in picks), timing=timing)
    log.info(
        "portraits_rendered",
        double_id=double.pk,
        item_id=item.pk if item is not None else None,
        action=order.action,
        images=len(saved),
        withheld=safety["withheld"],
        cache=stats,
        timing=result.get("timing"),
    )
    return result


def _group_subjects(item: RenderRunItem, version: Any) -> list[RunSubject]:
    """The run's people in slot order, each with a ready double; JobError when the group is no longer whole (a
    person's double was deleted, e.g. by their erasure: the portrait would show a stranger in their place)."""
    subjects = list(RunSubject.objects.filter(run_id=item.run_id).select_related("double").order_by("slot"))
    slots = runs.slots_of(version)
    if len(subjects) != slots or [s.slot for s in subjects] != list(range(1, slots + 1)):
        raise JobError(
            "One of this group's people is no longer in the run (their digital double was deleted): the group "
            "portrait can't be made without them. Start a new run for the group."
        )
    for subject in subjects:
        if subject.double.status != DigitalDouble.Status.READY:
            raise JobError("A digital double of this group is not trained.")
    return subjects


def demo_faces(subjects: list[Any]) -> Callable[[Any], list[tuple[int, int, int, int]]]:
    """The face "detector" of group runs on the tiny demo model, whose images are noise with no face to find:
    each slot's box (the template's), else equal columns left to right, as the faces, so a newcomer's demo group
    run goes through every stage (the recipe's face pass says so: `faces_placed`). Real models always use the
    face detector."""

    def detect(image: Any) -> list[tuple[int, int, int, int]]:
        width, height = image.size
        count = len(subjects)
        boxes = []
        for index, subject in enumerate(sorted(subjects, key=lambda s: s.slot)):
            left, top, right, bottom = subject.box or (index / count, 0.25, (index + 1) / count, 0.75)
            boxes.append((int(left * width), int(top * height), int(right * width), int(bottom * height)))
        return boxes

    return detect


def _render_group(
    ctx: JobContext, *, spec: Any, subjects: list[Any], config: Any, stages: Any, label: str
) -> list[Any]:
    """engine.group.render_group_portraits with progress 0-90 and cancellation (_run_pipeline); on the demo model
    the faces are placed by demo_faces."""
    # The demo model's renders have no face to find; a template photo is a real photo: always detected.
    placed = spec.is_demo and stages.template_photo is None

    def call(**callbacks: Any) -> list[Any]:
        return group_engine.render_group_portraits(
            cache=pipeline_cache(),
            spec=spec,
            subjects=subjects,
            config=config,
            stages=stages,
            detector=demo_faces(subjects) if placed else None,
            **callbacks,
        )

    made = _run_pipeline(ctx, spec=spec, config=config, label=label, what="group portrait", call=call)
    if placed:
        for entry in made:
            for stage in entry.recipe.get("stages") or []:
                if stage.get("name") == "face_pass":
                    stage["faces_placed"] = "slots (the demo model draws no faces to detect)"
    return made


def _score_group(subjects: list[RunSubject], rendered: list[Any]) -> list[Any]:
    """Each group portrait scored face by face against that face's person's centroid (engine.likeness)."""
    from engine import likeness

    centroids = [doubles.centroid(subject.double) for subject in subjects]
    scores = []
    for entry in rendered:
        faces = [face.get("face") or [0, 0, 1, 1] for face in entry.recipe.get("subjects") or []]
        scores.append(likeness.score_group_image(entry.image, list(zip(faces, centroids, strict=True))))
    return scores


def _group_parent(ctx: JobContext) -> tuple[Portrait | None, str]:
    """The group portrait an action renders again ("more" like its people, or a "reroll"), or (None, "")."""
    for key, action in (("more_like_me_of", "more"), ("reroll_of", "reroll")):
        parent_id = ctx.payload.get(key)
        if parent_id is None:
            continue
        parent = (
            Portrait.objects.select_related("item__run", "template_version__template", "template_version__style_lora")
            .filter(pk=parent_id, group__isnull=False)
            .first()
        )
        if parent is None or parent.item is None:
            raise JobError("The group portrait to render again no longer exists.")
        return parent, action
    return None, ""


def _portrait_subjects(parent: Portrait) -> list[PortraitSubject]:
    """A group portrait's people in slot order (for rendering it again); JobError when one was erased since."""
    subjects = list(PortraitSubject.objects.filter(portrait=parent).select_related("double").order_by("slot"))
    if len(subjects) != len((parent.recipe or {}).get("subjects") or []):
        raise JobError("One of this group portrait's people is no longer here: it can't be rendered again.")
    for subject in subjects:
        if subject.double.status != DigitalDouble.Status.READY:
            raise JobError("A digital double of this group is not trained.")
    return subjects


def _group_action_config(ctx: JobContext, parent: Portrait, action: str, inputs: dict[str, Any]) -> tuple[Any, Any]:
    """The config and stages that render a group portrait again: its recipe made more like its people (every
    face one step stronger) or with the payload's new seed."""
    recipe = parent.recipe or {}
    sr_model = Path(settings.ENGINE_UPSCALER_MODEL) if settings.ENGINE_UPSCALER_MODEL else None
    try:
        if action == "more":
            recipe = group_engine.more_like_me(recipe)
        config = rendering.config_from_recipe(
            recipe,
            init_image=inputs.get("init_image"),
            control_image=inputs.get("control_image"),
            style_path=inputs.get("style_path"),
        )
        stages = portrait.stages_from_recipe(recipe, photo=inputs.get("template_photo"), sr_model=sr_model)
    except ValueError as exc:
        raise JobError(f"This group portrait can't be rendered again: {exc}.") from None
    config.identity_sha256 = None  # each face has its own person's LoRA, checked against the recipe's subjects
    if action == "reroll":
        try:
            config.seeds = [int(ctx.payload["seed"])]
        except (KeyError, TypeError, ValueError):
            raise JobError("This re-roll names no seed.") from None
    return config, stages


def render_group_item(ctx: JobContext) -> dict[str, Any]:
    """A group run's item (generation/groups.py), or "more like me" / a re-roll of one of its portraits: the scene
    rendered with no identity, each person's face regenerated with that person's own identity LoRA
    (engine.group), every image checked for explicit content, scored face by face (the portrait's likeness is its
    weakest face's), ranked (an action's portrait takes its place in the parent's item), the best picked, and
    stored with one PortraitSubject per face. Idempotent like render_portraits (an earlier attempt's portraits
    are replaced)."""
    parent, action = _group_parent(ctx)
    item = parent.item if parent is not None else _run_item(ctx)
    assert item is not None
    version = runs.item_version(item)
    subjects: list[Any] = _portrait_subjects(parent) if parent is not None else _group_subjects(item, version)
    first = subjects[0].double
    order = RenderOrder(double=first, item=item, version=version, parent=parent, action=action)
    spec = _model_of(order)
    for subject in subjects[1:]:
        _model_of(RenderOrder(double=subject.double, item=item, version=version, parent=parent, action=action))
    boxes = groups.boxes_of(version)
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        inputs = _template_inputs(version, Path(tmp))
        if parent is not None:
            config, stages = _group_action_config(ctx, parent, action, inputs)
        else:
            config = _render_config(ctx, order, inputs)
            stages = _stages(order, spec, inputs)
            if stages.template_photo is not None:
                config.width = config.height = None  # the photo's faces render at the model's native size
        if stages.template_photo is not None:
            stages.template_photo.faces = len(subjects)
        ctx.progress(0, f"Loading {spec.display_name}")
        spec = base_models.ensure_available(spec)
        people = [
            group_engine.Subject(
                slot=subject.slot,
                identity_lora=_identity_lora(subject.double),
                trigger_phrase=subject.double.trigger_phrase,
                box=boxes[subject.slot - 1] if boxes else None,
            )
            for subject in subjects
        ]
        if parent is not None:
            wanted = [s.get("identity_sha256") for s in (parent.recipe or {}).get("subjects") or []]
            have = [hashlib.sha256(p.identity_lora).hexdigest() for p in people if isinstance(p.identity_lora, bytes)]
            if wanted != have:
                raise JobError("A digital double of this group portrait has changed: it can't be rendered again.")
        total = len(config.seeds)
        if parent is None:
            label = f"“{order.name}”: {total} group image{'s' if total != 1 else ''} of {len(people)} people"
        else:
            label = f"Rendering the group portrait again ({len(people)} people)"
        made = _render_group(ctx, spec=spec, subjects=people, config=config, stages=stages, label=label)
        del people
    if parent is not None:
        steps = int((parent.recipe or {}).get("more_like_me_step") or 0) + (1 if action == "more" else 0)
        for entry in made:
            entry.recipe["more_like_me_step"] = steps
    failures = _failures(made)
    rendered = [entry for entry in made if entry.image is not None]
    if failures:
        log.warning("group_portraits_failed", job_id=ctx.job.pk, failures=failures)
    if not rendered:
        raise JobError(failures[0]["message"] if failures else "No group portrait could be made.")
    ctx.progress(91, "Checking the images for explicit content")
    rendered, safety = screen_outputs(ctx, rendered)
    ctx.progress(92, "Scoring each face's likeness")
    from engine import likeness

    scores = _score_group(subjects, rendered)
    order_of_ranks = likeness.rank(scores)
    rank_of = {index: position + 1 for position, index in enumerate(order_of_ranks)}
    picks: set[int] = set()
    if parent is None:
        picks = portraits.choose_picks(order_of_ranks, [s.flagged for s in scores], runs.picks_per_template())
    ctx.progress(94, "Making thumbnails and watermarked previews")
    files = [_encode(entry.image, runs.watermark_text(first.studio)) for entry in rendered]
    saved: list[int] = []
    with transaction.atomic():
        wanted = [subject.double_id for subject in subjects]
        locked = DigitalDouble.objects.select_for_update().filter(pk__in=wanted).order_by("pk").in_bulk()
        if len(locked) != len(set(wanted)) or not RenderRunItem.objects.filter(pk=item.pk).exists():
            raise JobError("A digital double of this group, or the run, was deleted while rendering.")
        for earlier in Portrait.objects.filter(job=ctx.job):
            doubles.delete_portrait(portrait=earlier)
        for index, entry in enumerate(rendered):
            png, thumbnail, preview = files[index]
            score = scores[index]
            stored = portraits.store_portrait(
                double=locked[first.pk],
                job=ctx.job,
                item=item,
                version=version,
                png=png,
                thumbnail=thumbnail,
                preview=preview,
                recipe=_run_recipe(entry.recipe, version),
                likeness=score.likeness,
                flags=list(score.flags),
                rank=None if parent is not None else rank_of.get(index),
                is_pick=index in picks,
                is_demo=spec.is_demo,
                parent=parent,
                group_id=parent.group_id if parent is not None else item.run.group_id,
            )
            if parent is not None:
                portraits.insert_rank(portrait=stored)
            faces = {face.get("slot"): face for face in score.per_face}
            PortraitSubject.objects.bulk_create(
                [
                    PortraitSubject(
                        portrait=stored,
                        slot=subject.slot,
                        double_id=subject.double_id,
                        face=list((entry.recipe["subjects"][subject.slot - 1] or {}).get("face") or []),
                        likeness=(faces.get(subject.slot) or {}).get("likeness"),
                    )
                    for subject in subjects
                ]
            )
            saved.append(stored.pk)
    ctx.progress(100, _ready_message(len(saved), safety["withheld"], failures))
    result: dict[str, Any] = {
        "double_id": first.pk,
        "portraits": saved,
        "images": total,
        "people": len(subjects),
        **_safety_result(safety),
        "failed": failures,
        "run_id": item.run_id,
        "item_id": item.pk,
        "picks": sorted(saved[i] for i in picks),
        "pipeline_cache": dict(getattr(pipeline_cache(), "stats", {}) or {}),
    }
    log.info("group_portraits_rendered", item_id=item.pk, people=len(subjects), images=len(saved))
    return result


# One handler, two kinds: a run item (a template's version, or a test render) and an action on a portrait.
job_handler(
    runs.RUN_ITEM_KIND,
    cluster="gpu",
    cost=run_item_cost,
    units_used=images_rendered,
    model=job_base_model,
    description="Renders one item of a render run: a template's version, or a test render.",
)(render_portraits)
job_handler(
    doubles.RENDER_KIND,
    cluster="gpu",
    cost=render_cost,
    units_used=images_rendered,
    model=job_base_model,
    description="Renders a portrait again: more like the client, or with a new seed.",
)(render_portraits)


# --- Instant portraits (generation/instant.py, issue 17) ----------------------------------------------------------


def instant_cost(payload: dict[str, Any]) -> Charge:
    """One image per seed, on the instant model's family (recorded when the job was queued)."""
    family = str(payload.get("family") or "sd15")
    units = len(payload.get("seeds") or []) or int(payload.get("images") or 1)
    return Charge(item=f"render_image_{family}", units=max(units, 1), fallback="render_image_sd15")


def _instant_photo_set(ctx: JobContext) -> PhotoSet:
    """The job's photo set, its photos still usable (not purged, the client's consent on record, photos accepted),
    else JobError with the service's message."""
    from generation import instant

    try:
        photo_set_id = int(ctx.payload.get("photo_set_id"))
    except (TypeError, ValueError):
        raise JobError("This job names no photo set.") from None
    photo_set = PhotoSet.objects.select_related("client").filter(pk=photo_set_id).first()
    if photo_set is None:
        raise JobError("The photo set no longer exists.")
    try:
        instant.check_photo_set(photo_set)
    except instant.InstantError as exc:
        raise JobError(exc.message) from None
    return photo_set


def _load_instant_photos(photo_set: PhotoSet) -> list[Any]:
    """The accepted photos' originals (else face crops) from storage, as RGB PIL images: the adapter wants the
    face with context around it, which the engine crops itself."""
    return _load_accepted_photos(photo_set, prefer="original", purpose="instant")


def render_instant_portraits(ctx: JobContext) -> dict[str, Any]:
    """Instant portraits of a photo set (generation/instant.py): its accepted photos' largest face through the
    configured identity adapter (engine.instant.render_instant) on the instant model, no identity LoRA. Every
    image is checked for explicit content, scored for likeness against the centroid of the set's accepted photos
    and ranked; each is stored with its thumbnail and watermarked preview. The set must still keep its photos
    when the job starts AND when it stores (the set locked then): a purge in between discards the images and
    fails the job with the reason. Cancellable; idempotent (an earlier attempt's portraits are replaced)."""
    from django.core.files.base import ContentFile

    from engine import likeness
    from generation import instant
    from generation.models import InstantPortrait

    photo_set = _instant_photo_set(ctx)
    try:
        spec = base_models.get_model(str(ctx.payload.get("base_model") or ""), enabled_only=False)
        adapter = instant.adapter_config(spec)
    except base_models.UnknownBaseModel as exc:
        raise JobError(exc.message) from None
    except instant.InstantError as exc:
        raise JobError(exc.message) from None
    try:
        seeds = [int(seed) for seed in ctx.payload.get("seeds") or []]
    except (TypeError, ValueError):
        seeds = []
    if not instant.MIN_IMAGES <= len(seeds) <= instant.MAX_IMAGES:
        raise JobError("This job names no seeds to render.")

    ctx.progress(0, "Loading the photos")
    photos = _load_instant_photos(photo_set)
    if not photos:
        raise JobError("None of the set's accepted photos could be read: they may have been deleted.")
    ctx.progress(2, f"Loading {spec.display_name} and the identity adapter")
    spec = base_models.ensure_available(spec)
    instant.ensure_adapter(adapter, spec)
    ctx.progress(4, "Measuring the face in the photos")
    try:
        reference = likeness.identity_centroid(photos)
    except (ImportError, RuntimeError):  # no face library in this worker: portraits without a likeness
        reference = None

    config = rendering.RenderConfig(
        prompt=str(settings.ENGINE_INSTANT_PROMPT),
        negative_prompt=str(settings.ENGINE_INSTANT_NEGATIVE_PROMPT),
        steps=base_models.render_steps(spec, int(settings.ENGINE_INSTANT_STEPS)),
        seeds=seeds,
        batch_size=min(len(seeds), runs.render_batch_size()),
    )
    label = f"Rendering {len(seeds)} instant portrait{'s' if len(seeds) != 1 else ''}"
    throttle = _Throttle(ctx)

    def progress(step: int, total: int) -> None:
        total = max(int(total), 1)
        throttle.progress(5 + 85 * min(step, total) / total, f"{label} · step {step} of {total}", force=step == total)

    try:
        made = engine_instant.render_instant(
            cache=pipeline_cache(),
            spec=spec,
            adapter=adapter,
            photos=photos,
            config=config,
            scale=float(settings.ENGINE_INSTANT_SCALE),
            progress=progress,
            should_cancel=throttle.should_cancel,
        )
    except rendering.RenderCancelled:
        throttle.raise_stop()
    except ValueError as exc:
        raise JobError(f"The instant portraits can't be made: {exc}") from None
    finally:
        del photos
    if throttle.stop is not None:
        throttle.raise_stop()

    ctx.progress(91, "Checking the images for explicit content")
    rendered, safety = screen_outputs(ctx, made)
    ctx.progress(92, "Scoring likeness")
    scores = [likeness.score_image(entry.image, reference) for entry in rendered]
    order = likeness.rank(scores)
    rank_of = {index: position + 1 for position, index in enumerate(order)}
    ctx.progress(94, "Making thumbnails and watermarked previews")
    text = runs.watermark_text(photo_set.studio)
    files = [_encode(entry.image, text) for entry in rendered]
    saved: list[int] = []
    with transaction.atomic():
        locked = PhotoSet.objects.select_for_update().select_related("client").filter(pk=photo_set.pk).first()
        if locked is None:
            raise JobError("The photo set was deleted while the instant portraits were made.")
        try:
            instant.check_photo_set(locked)
        except instant.InstantError as exc:
            raise JobError(exc.message) from None
        for earlier in InstantPortrait.objects.filter(job=ctx.job):  # an earlier attempt of this job
            instant.delete_instant_portrait(portrait=earlier)
        for index, entry in enumerate(rendered):
            png, thumbnail, preview = files[index]
            row = InstantPortrait(
                studio_id=locked.studio_id,  # the files' paths name the studio
                photo_set=locked,
                job=ctx.job,
                recipe=entry.recipe,
                likeness=scores[index].likeness,
                flags=list(scores[index].flags),
                rank=rank_of.get(index),
            )
            row.image.save("instant.png", ContentFile(png), save=False)
            row.thumbnail.save("instant.webp", ContentFile(thumbnail), save=False)
            row.preview.save("instant.jpg", ContentFile(preview), save=False)
            row.save()
            saved.append(row.pk)
    ctx.progress(100, _ready_message(len(saved), safety["withheld"]).replace("portrait", "instant portrait", 1))
    log.info("instant_portraits_rendered", photo_set_id=photo_set.pk, images=len(saved), withheld=safety["withheld"])
    return {
        "photo_set_id": photo_set.pk,
        "instant_portraits": saved,
        "images": len(seeds),
        "adapter": adapter.key,
        **_safety_result(safety),
    }


job_handler(
    "portraits.instant",
    cluster="gpu",
    cost=instant_cost,
    units_used=images_rendered,
    model=job_base_model,
    description="Renders instant portraits from a photo set's accepted photos (before the digital double).",
)(render_instant_portraits)
