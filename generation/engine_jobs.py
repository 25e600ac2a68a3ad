"""The engine's job kinds, on the `gpu` cluster: thin wrappers that load the job's rows, call the engine
(generation/engine: no Django), write the results and report progress.

- "double.train": the accepted photos of a set (face crops, else originals) → an identity LoRA and centroid,
  stored encrypted; then the set's originals and face crops are deleted (clients' after-training hook).
- "portraits.render": a double + a render config (or "more like me" of a portrait) → ranked Portraits.

Imported by generation/jobs.py (jobs autodiscovery). torch, diffusers and the engine's ML modules are imported
inside the handlers only: CUDA is initialised in the worker process that runs a job, never in the cluster's
parent (tests/generation/test_no_torch_import.py). The pipeline cache lives for the worker process.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction

from clients.models import PhotoSet
from clients.services import purge_photo_set_files
from generation import base_models, doubles
from generation.models import DigitalDouble, Portrait
from generation.registry import JobAbandoned, JobCancelled, JobContext, JobError, job_handler

log = structlog.get_logger("generation.engine_jobs")

# Progress is written at most this often (each write is one UPDATE), and cancellation checked as often.
PROGRESS_INTERVAL_SECONDS = 1.0

_PIPELINE_CACHE: Any = None


def pipeline_cache() -> Any:
    """The worker process's pipeline cache (generation.engine.rendering.PipelineCache), made on first use."""
    global _PIPELINE_CACHE
    if _PIPELINE_CACHE is None:
        from generation.engine.rendering import PipelineCache

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


def train_message(step: int, total: int, loss: float | None, eta: float | None) -> str:
    """ "Step 120 of 800 · loss 0.083 · about 2 min left"."""
    parts = [f"Step {step} of {total}"]
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if eta is not None:
        parts.append(_duration(eta))
    return " · ".join(parts)


def _load_training_images(photo_set: PhotoSet) -> list[Any]:
    """The accepted photos' face crops (else originals) from storage, as RGB PIL images."""
    from PIL import Image

    from generation.engine.images import PhotoRejected, load_photo

    images = []
    for photo in doubles.accepted_photos(photo_set=photo_set):
        field = photo.face_crop if photo.face_crop and photo.face_crop.name else photo.original
        if not field or not field.name:
            continue
        try:
            with field.storage.open(field.name, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, OSError):
            log.warning("training_photo_missing", photo_id=photo.pk)
            continue
        try:
            images.append(load_photo(data).image)
        except PhotoRejected:
            try:
                images.append(Image.open(io.BytesIO(data)).convert("RGB"))
            except OSError:
                log.warning("training_photo_unreadable", photo_id=photo.pk)
    return images


@job_handler(doubles.TRAIN_KIND, cluster="gpu", description="Trains a client's digital double (identity LoRA).")
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

    from generation.engine import training

    try:
        spec = base_models.get_model(double.base_model, enabled_only=False)
    except base_models.UnknownBaseModel as exc:
        doubles.set_status(double=double, status=DigitalDouble.Status.FAILED)
        raise JobError(exc.message) from None
    ctx.progress(1, f"Loading the base model {spec.display_name}")
    spec = base_models.ensure_available(spec)
    overrides = dict(double.config or {})
    steps = overrides.pop("steps", None) or (settings.ENGINE_TRAIN_STEPS or None)
    config = training.TrainConfig(trigger=double.trigger, class_word=double.class_word, steps=steps, **overrides)
    throttle = _Throttle(ctx)

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
        raise JobError(exc.message) from None
    receipt = purge_photo_set_files(photo_set=photo_set, kind="after_training", performed_by=ctx.job.created_by)
    shutil.rmtree(folder, ignore_errors=True)
    log.info("double_ready", double_id=double.pk, receipt_id=receipt.pk, steps=metrics["steps"])
    return {"double_id": double.pk, "receipt_id": receipt.pk, **metrics}


def _render_config(ctx: JobContext, double: DigitalDouble) -> tuple[Any, Portrait | None]:
    """The engine's RenderConfig for this job, and the portrait it makes "more like me" (or None)."""
    from generation.engine import rendering

    parent_id = ctx.payload.get("more_like_me_of")
    if parent_id is not None:
        parent = Portrait.objects.filter(pk=parent_id, double=double).first()
        if parent is None:
            raise JobError("The portrait to render again no longer exists.")
        return rendering.config_from_recipe(rendering.more_like_me(parent.recipe)), parent
    try:
        request = doubles.clean_render_config(ctx.payload.get("config") or {})
    except doubles.DoubleError as exc:
        raise JobError(exc.message) from None
    config = rendering.RenderConfig(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        scheduler=request.scheduler,
        steps=request.steps,
        guidance=request.guidance,
        seeds=list(request.seeds),
        identity_weight=request.identity_weight,
    )
    return config, None


@job_handler(doubles.RENDER_KIND, cluster="gpu", description="Renders portraits of a digital double.")
def render_portraits(ctx: JobContext) -> dict[str, Any]:
    """Render the payload's config (or "more like me" of a portrait) with the double's identity LoRA, score
    each image's likeness against the double's centroid, rank, and store the portraits (PNG, no metadata).
    Idempotent: portraits an earlier attempt of this job stored are replaced."""
    double = _double(ctx)
    if double.status != DigitalDouble.Status.READY:
        raise JobError("This digital double is not trained.")
    from generation.engine import likeness, rendering
    from generation.engine.images import encode_clean

    config, parent = _render_config(ctx, double)
    try:
        spec = base_models.get_model(double.base_model, enabled_only=False)
    except base_models.UnknownBaseModel as exc:
        raise JobError(exc.message) from None
    ctx.progress(0, f"Loading {spec.display_name}")
    spec = base_models.ensure_available(spec)
    try:
        lora = doubles.load_lora_bytes(double)
    except doubles.DoubleError as exc:
        raise JobError(exc.message) from None
    throttle = _Throttle(ctx)
    total_images = len(config.seeds)

    def progress(done: int, total: int) -> None:
        # The engine counts denoising steps across all batches of the job.
        label = f"Rendering {total_images} image{'s' if total_images != 1 else ''}: step {done} of {total}"
        throttle.progress(90 * done / max(total, 1), label, force=done == total)

    try:
        rendered = rendering.render(
            cache=pipeline_cache(),
            spec=spec,
            identity_lora=lora,
            trigger_phrase=double.trigger_phrase,
            config=config,
            progress=progress,
            should_cancel=throttle.should_cancel,
        )
    except rendering.RenderCancelled:
        throttle.raise_stop()
    del lora
    if throttle.stop is not None:
        throttle.raise_stop()

    ctx.progress(92, "Scoring likeness")
    reference = doubles.centroid(double)
    scores = [likeness.score_image(item.image, reference) for item in rendered]
    order = likeness.rank(scores)
    rank_of = {index: position + 1 for position, index in enumerate(order)}
    ctx.progress(96, "Saving the portraits")
    saved: list[int] = []
    with transaction.atomic():
        locked = DigitalDouble.objects.select_for_update().filter(pk=double.pk).first()
        if locked is None:
            raise JobError("The digital double was deleted while rendering.")
        for earlier in Portrait.objects.filter(job=ctx.job):  # an earlier attempt of this job
            doubles.delete_portrait(portrait=earlier)
        for index, item in enumerate(rendered):
            score = scores[index]
            portrait = doubles.save_portrait(
                double=locked,
                job=ctx.job,
                png=encode_clean(item.image, format="PNG"),
                recipe=item.recipe,
                likeness=score.likeness,
                flags=list(score.flags),
                rank=rank_of.get(index),
                is_demo=spec.is_demo,
                parent=parent,
            )
            saved.append(portrait.pk)
    stats = dict(getattr(pipeline_cache(), "stats", {}) or {})
    log.info("portraits_rendered", double_id=double.pk, images=len(saved), cache=stats)
    return {"double_id": double.pk, "portraits": saved, "images": total_images, "pipeline_cache": stats}
