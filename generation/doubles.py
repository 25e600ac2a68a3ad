"""Digital doubles and portraits: actions (writes) and reads.

Keyword-only, typed, run in the current tenant context (a request, a task, `tenant_context()`). Refusals meant for
people raise :class:`DoubleError` with a message and an HTTP status. Long work is a job on the `gpu` cluster
("double.train", "portraits.render"; handlers in generation/jobs.py), enqueued when the transaction
commits. Nothing here imports torch: the web process never loads the engine's ML code.

Privacy: a double's LoRA and identity centroid are encrypted at rest (generation.crypto) and decrypted only in
memory, in the worker. Erasing a client deletes its doubles and portraits, files included (the "doubles"
erasure step registered below); the export carries the doubles' metadata and the portraits, not the LoRA
weights (docs/engine.md, "Export").
"""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Photo, PhotoSet
from clients.selectors import readiness
from clients.services import register_client_erasure_step, register_client_export_step
from engine import prompts
from generation import crypto, training_checkpoints
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from jobs.services import JobStateError, cancel_job, enqueue_job
from templates_app import base_models
from tenants.access import acting_user
from tenants.models import User
from tenants.refusals import Refused

log = structlog.get_logger("generation.doubles")

TRAIN_KIND = "double.train"
RENDER_KIND = "portraits.render"
RUN_ITEM_KIND = "runs.render_item"  # generation/runs.py
# The rare token that names the person in prompts ("photo of ohwx woman"). "sks", the DreamBooth paper's token,
# is a rifle's name in many base models' vocabularies; "ohwx" carries no prior meaning (docs/engine.md).
DEFAULT_TRIGGER = "ohwx"
CLASS_WORDS = tuple(DigitalDouble.ClassWord.values)
# The schedulers of engine.rendering.SCHEDULERS (kept here so the web never imports the engine's ML
# code; tests/generation/test_doubles.py checks they agree).
SCHEDULERS = ("dpmpp_2m_karras", "euler_a", "ddim")
SCHEDULER_LABELS = {"dpmpp_2m_karras": "DPM++ 2M Karras", "euler_a": "Euler ancestral", "ddim": "DDIM"}
MAX_RENDER_STEPS = 100
MAX_PROMPT_CHARS = 1000
SUBJECT = "{subject}"
ACTIVE_JOB_STATES = (Job.State.QUEUED, Job.State.RUNNING)


class DoubleError(Refused):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with."""


def enqueue_billed(
    *, kind: str, payload: dict[str, Any], user: User | None, error: type[DoubleError] | None = None
) -> Job:
    """enqueue_job for a GPU kind: its credits are reserved in the same transaction (the job system's enqueue
    hook, which billing registers). When the studio is out of credits nothing is queued and `error` (DoubleError
    or a subclass) is raised with the refusal's status (402) and message (it names the billing page)."""
    try:
        return enqueue_job(kind=kind, payload=payload, user=user)
    except Refused as exc:
        raise (error or DoubleError)(exc.message, status=exc.status) from None


def work_dir(double: DigitalDouble) -> Path:
    """The training job's working folder: stable across attempts, so a killed job resumes from its last
    checkpoint. Removed when training ends well or the double is deleted."""
    return Path(settings.ENGINE_WORK_DIR) / f"double-{double.pk}"


# --- Training -------------------------------------------------------------------------------------------------


def start_training(
    *,
    photo_set: PhotoSet,
    base_model: str | None = None,
    class_word: str = DigitalDouble.ClassWord.PERSON,
    user: User | None = None,
    is_test_subject: bool = False,
    config: Mapping[str, Any] | None = None,
) -> DigitalDouble:
    """Create a queued digital double from the accepted photos of the set and enqueue its training job
    ("double.train", gpu cluster) on commit.

    Refuses with DoubleError: 409 when the set is not ready to train (readiness: open, enough accepted photos,
    nothing pending) or a double is already being trained from it; 400 for an unknown or disabled base model or
    class word."""
    if class_word not in CLASS_WORDS:
        raise DoubleError(_("Choose how the prompts name the client: %(words)s.") % {"words": ", ".join(CLASS_WORDS)})
    try:
        spec = base_models.get_model(base_model) if base_model else base_models.default_model()
    except base_models.UnknownBaseModel as exc:
        raise DoubleError(exc.message) from None
    overrides = _training_overrides(config or {})
    with transaction.atomic():
        locked = PhotoSet.objects.select_for_update().select_related("client").get(pk=photo_set.pk)
        state = readiness(photo_set=locked)
        if not state.can_train:
            if locked.status != PhotoSet.Status.COLLECTING:
                message = _("This photo set was already used or its photos were deleted: start a new set.")
            elif state.pending:
                message = _("Some photos are still being checked: wait until every photo has its verdict.")
            else:
                message = _(
                    "A digital double needs at least %(minimum)s accepted photos; this set has %(accepted)s."
                ) % {"minimum": state.minimum, "accepted": state.accepted}
            raise DoubleError(message, status=409)
        busy = _training_in_progress().filter(photo_set=locked).exists()
        if busy:
            raise DoubleError(_("A digital double is already being trained from this photo set."), status=409)
        double = DigitalDouble(
            client=locked.client,
            photo_set=locked,
            base_model=spec.name,
            family=spec.family,
            is_demo=spec.is_demo,
            trigger=DEFAULT_TRIGGER,
            class_word=class_word,
            config=overrides,
            is_test_subject=is_test_subject,
            created_by=acting_user(user),
        )
        double.save()
        job = enqueue_billed(kind=TRAIN_KIND, payload={"double_id": double.pk}, user=acting_user(user))
        double.job = job
        double.save(update_fields=["job"])
    log.info("double_training_requested", double_id=double.pk, photo_set_id=locked.pk, base_model=spec.name)
    return double


_TRAINING_KEYS = {"rank": (1, 128), "steps": (1, 5000), "learning_rate": (1e-6, 1e-2), "batch_size": (1, 16)}


def _training_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validated overrides of the engine's TrainConfig (rank, steps, learning_rate, batch_size,
    train_text_encoder)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "train_text_encoder":
            out[key] = bool(value)
            continue
        if key not in _TRAINING_KEYS:
            raise DoubleError(_("Unknown training option %(key)r.") % {"key": key})
        low, high = _TRAINING_KEYS[key]
        try:
            number = float(value) if key == "learning_rate" else int(value)
        except (TypeError, ValueError):
            raise DoubleError(_("The training option %(key)s must be a number.") % {"key": key}) from None
        if not low <= number <= high:
            raise DoubleError(
                _("The training option %(key)s must be between %(low)g and %(high)g.")
                % {"key": key, "low": low, "high": high}
            )
        out[key] = number
    return out


def save_training_result(
    *, double: DigitalDouble, lora_bytes: bytes, centroid: np.ndarray | None, metrics: Mapping[str, Any]
) -> DigitalDouble:
    """Store the trained double, encrypted: the LoRA's safetensors bytes in private storage, the centroid in
    the row; status READY. A file stored by an earlier attempt is replaced."""
    encrypted = crypto.encrypt(lora_bytes)
    with transaction.atomic():
        # Locked first: an erasure running at the same moment either finishes before (the double is gone: no
        # file is written) or waits for this transaction (and then deletes the new file too).
        locked = DigitalDouble.objects.select_for_update().filter(pk=double.pk).first()
        if locked is None:
            raise DoubleError("The digital double was deleted while it was being trained.", status=404)
        old_name = locked.lora_file.name if locked.lora_file else ""
        double.lora_file.save("double.bin", ContentFile(encrypted), save=False)
        double.centroid_encrypted = (
            crypto.encrypt(np.asarray(centroid, dtype=np.float32).tobytes()) if centroid is not None else None
        )
        double.metrics = dict(metrics)
        double.status = DigitalDouble.Status.READY
        double.trained_at = timezone.now()
        double.save(update_fields=["lora_file", "centroid_encrypted", "metrics", "status", "trained_at"])
    if old_name and old_name != double.lora_file.name:
        double.lora_file.storage.delete(old_name)
    log.info("double_trained", double_id=double.pk, bytes=len(lora_bytes))
    return double


def set_status(*, double: DigitalDouble, status: str) -> None:
    DigitalDouble.objects.filter(pk=double.pk).update(status=status)
    double.status = status


def load_lora_bytes(double: DigitalDouble) -> bytes:
    """The double's LoRA as plain safetensors bytes, decrypted in memory (never written in clear)."""
    if not double.lora_file or not double.lora_file.name:
        raise DoubleError(_("This digital double has no trained weights."), status=409)
    with double.lora_file.storage.open(double.lora_file.name, "rb") as handle:
        return crypto.decrypt(handle.read())


def centroid(double: DigitalDouble) -> np.ndarray | None:
    """The double's 128-d identity centroid (float32), or None when training found no face to build it."""
    if not double.centroid_encrypted:
        return None
    return np.frombuffer(crypto.decrypt(bytes(double.centroid_encrypted)), dtype=np.float32).copy()


def accepted_photos(*, photo_set: PhotoSet) -> QuerySet[Photo]:
    """The photos training uses: accepted, with their files still kept, in upload order."""
    return Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).order_by("uploaded_at", "id")


# --- Rendering ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderRequest:
    """A validated test render, as the job's payload carries it."""

    prompt: str
    negative_prompt: str = ""
    scheduler: str = "dpmpp_2m_karras"
    steps: int = 30
    guidance: float = 7.0
    seeds: tuple[int, ...] = (0,)
    identity_weight: float = 1.0

    def as_payload(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "scheduler": self.scheduler,
            "steps": self.steps,
            "guidance": self.guidance,
            "seeds": list(self.seeds),
            "identity_weight": self.identity_weight,
        }


def clean_render_config(config: Mapping[str, Any]) -> RenderRequest:
    """Check a render config from a form or the API; DoubleError (400) with a message for people."""
    prompt = str(config.get("prompt") or "").strip()
    if not prompt:
        raise DoubleError(_("Write a prompt."))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise DoubleError(_("The prompt is too long (%(max)s characters at most).") % {"max": MAX_PROMPT_CHARS})
    if SUBJECT not in prompt:
        raise DoubleError(_("Put {subject} in the prompt where the client should appear."))
    if problem := prompts.length_problem(prompt):
        raise DoubleError(problem)
    negative = str(config.get("negative_prompt") or "").strip()
    if len(negative) > MAX_PROMPT_CHARS:
        raise DoubleError(
            _("The negative prompt is too long (%(max)s characters at most).") % {"max": MAX_PROMPT_CHARS}
        )
    if problem := prompts.length_problem(negative, negative=True):
        raise DoubleError(problem)
    scheduler = str(config.get("scheduler") or "dpmpp_2m_karras")
    if scheduler not in SCHEDULERS:
        raise DoubleError(
            _("Unknown scheduler %(scheduler)r: use one of %(schedulers)s.")
            % {"scheduler": scheduler, "schedulers": ", ".join(SCHEDULERS)}
        )
    try:
        steps = int(config.get("steps", 30))
        guidance = float(config.get("guidance", 7.0))
        weight = float(config.get("identity_weight", 1.0))
        if "seeds" in config and config["seeds"] is not None:
            seeds = tuple(int(s) for s in config["seeds"])
        else:
            count = int(config.get("images", 1))
            first = int(config.get("seed", 0))
            if not 1 <= count <= settings.ENGINE_MAX_IMAGES_PER_RENDER:
                raise DoubleError(
                    _("Render between 1 and %(max)s images.") % {"max": settings.ENGINE_MAX_IMAGES_PER_RENDER}
                )
            seeds = tuple(range(first, first + count))
    except (TypeError, ValueError):
        raise DoubleError(_("Steps, guidance, identity weight, seed and images must be numbers.")) from None
    if not 1 <= steps <= MAX_RENDER_STEPS:
        raise DoubleError(_("Use between 1 and %(max)s steps.") % {"max": MAX_RENDER_STEPS})
    if not 0 <= guidance <= 30:
        raise DoubleError(_("The guidance scale is between 0 and 30."))
    if not 0 <= weight <= 2:
        raise DoubleError(_("The identity weight is between 0 and 2."))
    if not 1 <= len(seeds) <= settings.ENGINE_MAX_IMAGES_PER_RENDER:
        raise DoubleError(_("Render between 1 and %(max)s images.") % {"max": settings.ENGINE_MAX_IMAGES_PER_RENDER})
    if any(not 0 <= s < 2**32 for s in seeds):
        raise DoubleError(_("Seeds are whole numbers from 0 to 4294967295."))
    return RenderRequest(
        prompt=prompt,
        negative_prompt=negative,
        scheduler=scheduler,
        steps=steps,
        guidance=guidance,
        seeds=seeds,
        identity_weight=weight,
    )


def require_ready(double: DigitalDouble) -> None:
    if double.status != DigitalDouble.Status.READY:
        raise DoubleError(_("This digital double is not trained yet."), status=409)


# --- Deleting -------------------------------------------------------------------------------------------------


def _delete_file(field: FieldFile) -> int:
    if not field or not field.name:
        return 0
    field.storage.delete(field.name)
    return 1


PORTRAIT_FILE_FIELDS = ("image", "thumbnail", "preview")


def _delete_portrait_files(portrait: Portrait) -> int:
    return sum(_delete_file(getattr(portrait, name)) for name in PORTRAIT_FILE_FIELDS)


def delete_portrait(*, portrait: Portrait) -> int:
    """Delete a portrait and its files (full resolution, thumbnail, watermarked preview) from storage; returns
    the number of files deleted."""
    files = _delete_portrait_files(portrait)
    portrait.delete()
    return files


def delete_double(*, double: DigitalDouble) -> dict[str, int]:
    """Delete a double with its portraits and render runs: files from storage (encrypted LoRA, portrait images,
    thumbnails and previews, the training checkpoints kept in shared storage: "checkpoint_files"), the training
    job's working folder (checkpoints), the rows. Its queued or running
    jobs are cancelled. Group portraits showing this person are withdrawn whole, files included (never kept with
    a stranger's face in their place), and the group runs' unfinished jobs cancelled ("group_portraits" counts
    them). Returns counts."""
    counts = {"doubles": 0, "portraits": 0, "files": 0, "group_portraits": 0, "checkpoint_files": 0}
    with transaction.atomic():
        shown = Portrait.objects.filter(Q(double=double) | Q(subjects__double=double)).distinct()
        jobs = set(shown.exclude(job=None).values_list("job_id", flat=True))
        jobs.update(
            RenderRunItem.objects.filter(run__subjects__double=double)
            .exclude(job=None)
            .values_list("job_id", flat=True)
        )
        if double.job_id:
            jobs.add(double.job_id)
        for job in Job.objects.filter(pk__in=jobs, state__in=ACTIVE_JOB_STATES):
            with contextlib.suppress(JobStateError):
                cancel_job(job=job)
        # Test renders, portrait actions and render run items ("runs.render_item") of this double.
        kinds = (RENDER_KIND, RUN_ITEM_KIND)
        for job in Job.objects.filter(kind__in=kinds, state__in=ACTIVE_JOB_STATES, payload__double_id=double.pk):
            with contextlib.suppress(JobStateError):
                cancel_job(job=job)
        for portrait in list(shown):
            counts["files"] += _delete_portrait_files(portrait)
            counts["portraits"] += 1
            counts["group_portraits"] += 1 if portrait.group_id is not None or portrait.double_id != double.pk else 0
            portrait.delete()
        counts["files"] += _delete_file(double.lora_file)
        folder = work_dir(double)
        stored = training_checkpoints.double_prefix(double)
        double_ref = double.pk
        double.delete()
        counts["doubles"] = 1
    shutil.rmtree(folder, ignore_errors=True)
    # After the commit: a checkpoint a running attempt uploads meanwhile is deleted by that attempt once it sees
    # the double gone (generation/jobs.py), or here.
    counts["checkpoint_files"] = training_checkpoints.delete_prefix(stored)
    log.info("double_deleted", double_ref=double_ref, counts=counts)
    return counts


@register_client_erasure_step("doubles")
def erase_client_doubles(client: Client) -> Mapping[str, int]:
    """Erasure step: every double of the client and its portraits, files included. Counts only (none for a
    client without doubles, so the receipt lists what was actually deleted)."""
    totals = {"doubles": 0, "portraits": 0, "group_portraits": 0, "double_files": 0, "training_checkpoint_files": 0}
    for double in list(DigitalDouble.objects.filter(client=client)):
        counts = delete_double(double=double)
        totals["doubles"] += counts["doubles"]
        totals["portraits"] += counts["portraits"]
        totals["group_portraits"] += counts["group_portraits"]
        totals["double_files"] += counts["files"]
        totals["training_checkpoint_files"] += counts["checkpoint_files"]
    return {key: value for key, value in totals.items() if value}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@register_client_export_step("doubles")
def export_client_doubles(client: Client, archive: zipfile.ZipFile) -> None:
    """Export step: `doubles.json` (each double's metadata, its base model and licence, and its portraits with
    their recipes and scores) and the portrait images under `portraits/`. The LoRA weights are not exported
    (docs/engine.md, "Export": a portable model of the client's face is a deepfake kit if the ZIP leaks); nor is
    the identity centroid, which `identity_centroid` describes (kept or not, what it is, what it is for)."""
    registry = {spec.name: spec for spec in base_models.all_models()}
    out = []
    for double in DigitalDouble.objects.filter(client=client).order_by("created_at", "pk"):
        spec = registry.get(double.base_model)
        portraits = []
        for portrait in Portrait.objects.filter(double=double).order_by("created_at", "pk"):
            entry: dict[str, Any] = {
                "id": portrait.pk,
                "created_at": _iso(portrait.created_at),
                "likeness": portrait.likeness,
                "flags": portrait.flags,
                "rank": portrait.rank,
                "is_demo": portrait.is_demo,
                "parent": portrait.parent_id,
                "recipe": portrait.recipe,
                "file": None,
            }
            stored = portrait.image
            if stored and stored.name and stored.storage.exists(stored.name):
                arcname = f"portraits/double-{double.pk}/portrait-{portrait.pk}.png"
                with stored.storage.open(stored.name, "rb") as src, archive.open(arcname, "w") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                entry["file"] = arcname
            portraits.append(entry)
        out.append(
            {
                "id": double.pk,
                "status": double.status,
                "base_model": double.base_model,
                "base_model_licence": spec.licence if spec else None,
                "family": double.family,
                "is_demo": double.is_demo,
                "trigger_phrase": double.trigger_phrase,
                "photo_set": double.photo_set_id,
                "created_at": _iso(double.created_at),
                "trained_at": _iso(double.trained_at),
                "metrics": double.metrics,
                "weights": "Not exported: the identity weights stay encrypted with the studio's platform "
                "(see the studio's privacy notice). Erasing the client deletes them.",
                "identity_centroid": (
                    "Kept, not exported: a numerical description of the face (128 numbers computed from the "
                    "training photos, a biometric template), encrypted with this double and used only to score "
                    "how closely its portraits resemble the client. Deleting the double or erasing the client "
                    "deletes it."
                    if double.centroid_encrypted
                    else "None kept for this double."
                ),
                "portraits": portraits,
            }
        )
    archive.writestr("doubles.json", json.dumps(out, indent=2, ensure_ascii=False, default=str))


# --- Reads ----------------------------------------------------------------------------------------------------


def client_doubles(*, client: Client) -> QuerySet[DigitalDouble]:
    """A client's doubles, newest first, with their training job."""
    return DigitalDouble.objects.filter(client=client).select_related("job", "photo_set").order_by("-created_at", "-id")


def double_portraits(*, double: DigitalDouble) -> list[Portrait]:
    """The double's portraits: newest render run first, best rank first within a run."""
    portraits = list(Portrait.objects.filter(double=double).select_related("job"))
    portraits.sort(key=lambda p: (-(p.job_id or 0), p.rank if p.rank is not None else 10**6, -p.pk))
    return portraits


def latest_render_job(*, double: DigitalDouble) -> Job | None:
    """The double page's latest render: a test render (a run of kind "test") or an action on one of its
    portraits ("more like me", a re-roll), whichever came last."""
    test_items = RenderRunItem.objects.filter(run__double=double, run__kind=RenderRun.Kind.TEST).values("job_id")
    return (
        Job.objects.filter(payload__double_id=double.pk)
        .filter(Q(kind=RENDER_KIND) | Q(kind=RUN_ITEM_KIND, pk__in=test_items))
        .order_by("-created_at", "-id")
        .first()
    )


def _training_in_progress() -> QuerySet[DigitalDouble]:
    """Doubles being trained: queued or training, or whose training job was retried and waits or runs again
    (the double's own status changes only when the worker picks the job up)."""
    return DigitalDouble.objects.filter(
        Q(status__in=[DigitalDouble.Status.QUEUED, DigitalDouble.Status.TRAINING])
        | Q(job__state__in=[Job.State.QUEUED, Job.State.RUNNING])
    ).exclude(status=DigitalDouble.Status.READY)


def trainable_sets(*, client: Client) -> list[PhotoSet]:
    """The client's open sets whose readiness allows training and from which no double is being trained (the
    page offers no Train form that could only be refused)."""
    sets = []
    busy = set(_training_in_progress().filter(client=client).values_list("photo_set_id", flat=True))
    open_sets = PhotoSet.objects.filter(client=client, status=PhotoSet.Status.COLLECTING).exclude(pk__in=busy)
    for photo_set in open_sets.order_by("-created_at"):
        state = readiness(photo_set=photo_set)
        if state.can_train:
            photo_set.readiness = state  # type: ignore[attr-defined]
            sets.append(photo_set)
    return sets
