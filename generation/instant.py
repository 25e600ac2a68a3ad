"""Instant portraits (issue 17): portraits from a photo set's accepted photos, before the client's digital double is
trained, through a training-free identity adapter (engine/instant.py, engine/identity_adapters.py).

Keyword-only, typed, in the current tenant context, like generation.doubles. The work is a job of kind
"portraits.instant" on the `gpu` cluster (handler in generation/jobs.py), billed in GPU credits per image like
every render, enqueued when the transaction commits.

Which adapter renders them is the operator's: ``ENGINE_INSTANT_ADAPTER`` (a JSON object engine.identity_adapters
.enable accepts; "demo": a tiny random adapter built next to the tiny demo model, for `make run`; empty: instant
portraits are unavailable and the photo set's page says what to configure). They render with the base model a
double would train on (templates_app.base_models.default_model), whose family must be the adapter's.

Privacy: the photos are used only while the set still keeps them: the service refuses a set whose photos were
deleted (after training, or at the end of their retention), and the job checks again before it reads them and
once more, with the set locked, before it stores anything (a purge between the two discards the images).
Erasing a client deletes its instant portraits, files included (the "instant_portraits" erasure step below); the
export carries them (`instant_portraits.json` and the images). Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import Client, PhotoSet
from clients.services import register_client_erasure_step, register_client_export_step
from engine import identity_adapters
from engine.checkpoints import TINY_SD15, BaseModelSpec, build_tiny_ip_adapter
from generation import doubles, runs
from generation.models import InstantPortrait
from jobs.models import Job
from jobs.services import JobStateError, cancel_job
from templates_app import base_models
from tenants.access import acting_user
from tenants.models import User

log = structlog.get_logger("generation.instant")

KIND = "portraits.instant"
MIN_IMAGES, MAX_IMAGES, DEFAULT_IMAGES = 1, 8, 4
#: ENGINE_INSTANT_ADAPTER's value for the tiny random adapter of the demo model.
DEMO = "demo"
DEMO_FOLDER = "tiny-ip-adapter-sd15"
DEMO_WEIGHT_NAME = "ip-adapter_tiny.safetensors"
DEMO_LICENCE = "Random weights built for the demo (no licence needed; its images are noise)"
FILE_FIELDS = ("image", "thumbnail", "preview")

NOT_CONFIGURED = (
    "Instant portraits are not available on this platform: the operator has not enabled an identity adapter. "
    'Set ENGINE_INSTANT_ADAPTER to a JSON object such as {"key": "ip-adapter-plus-face-sd15", "source": '
    '"/models/IP-Adapter", "weight_name": "models/ip-adapter-plus-face_sd15.safetensors", "image_encoder": '
    '"/models/IP-Adapter/models/image_encoder"} (docs/engine.md, "Instant portraits").'
)
PHOTOS_DELETED = gettext_lazy(
    "The photos of this set were deleted (after training, or at the end of their retention): instant portraits "
    "can't be made from it. Upload a new set."
)
NO_ACCEPTED_PHOTOS = gettext_lazy(
    "This set has no accepted photo yet: instant portraits are made from the set's accepted photos. Upload photos "
    "and wait for their verdicts."
)
NO_CONSENT = gettext_lazy(
    "%(name)s has no consent on record: no portrait can be made from their photos until they agree."
)
BUSY = gettext_lazy("Instant portraits are already being made from this set: wait for them to finish.")


class InstantError(doubles.DoubleError):
    """A refusal of instant portraits, for people (`message`, `status`)."""


# --- The adapter and the model ----------------------------------------------------------------------------------


def _setting() -> Any:
    value = getattr(settings, "ENGINE_INSTANT_ADAPTER", "") or ""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InstantError(
                    f"ENGINE_INSTANT_ADAPTER is not valid JSON ({exc.msg}): instant portraits are unavailable.",
                    status=409,
                ) from None
    return value


def demo_folder() -> Path:
    """Where the demo's tiny adapter is built (next to the tiny demo model)."""
    return Path(settings.ENGINE_MODELS_DIR) / DEMO_FOLDER


def model() -> BaseModelSpec:
    """The base model instant portraits render with: the one a double would train on (the default model)."""
    try:
        return base_models.default_model()
    except base_models.UnknownBaseModel as exc:
        raise InstantError(exc.message, status=409) from None


def adapter_config(spec: BaseModelSpec | None = None) -> identity_adapters.AdapterConfig:
    """The enabled identity adapter (ENGINE_INSTANT_ADAPTER), checked against the base model `spec` (default: the
    instant model). InstantError (409) with what the operator must configure when there is none, the registry's
    refusal (a non-commercial adapter without a declared licence, an unknown key, a missing path), or an adapter
    for another model family."""
    value = _setting()
    spec = spec or model()
    if not value:
        raise InstantError(NOT_CONFIGURED, status=409)
    if value == DEMO:
        if not (spec.is_demo and spec.name == TINY_SD15):
            raise InstantError(
                f'ENGINE_INSTANT_ADAPTER is "demo", whose tiny adapter only fits the tiny demo model, and instant '
                f"portraits render with {spec.display_name}. {NOT_CONFIGURED.split(': ', 1)[1]}",
                status=409,
            )
        folder = demo_folder()
        return identity_adapters.enable(
            {
                "key": "ip-adapter-sd15",
                "source": str(folder),
                "weight_name": DEMO_WEIGHT_NAME,
                "image_encoder": str(folder / "image_encoder"),
                "declared_licence": DEMO_LICENCE,
            }
        )
    if not isinstance(value, Mapping):
        raise InstantError(
            'ENGINE_INSTANT_ADAPTER must be a JSON object ({"key", "source", "weight_name", "image_encoder", '
            '"declared_licence"?}) or "demo": instant portraits are unavailable.',
            status=409,
        )
    try:
        config = identity_adapters.enable(value)
    except identity_adapters.AdapterRefused as exc:
        raise InstantError(f"Instant portraits are unavailable: {exc}", status=409) from None
    if config.adapter.family != spec.family:
        raise InstantError(
            f"Instant portraits are unavailable: the identity adapter {config.adapter.label} is for "
            f"{config.adapter.family} models, and the default base model {spec.display_name} is {spec.family}.",
            status=409,
        )
    return config


def ensure_adapter(config: identity_adapters.AdapterConfig, spec: BaseModelSpec) -> None:
    """Make sure the demo's tiny adapter exists (built once, in a temporary folder moved into place). Imports
    torch: workers and the `engine` command only. A configured real adapter is loaded from where it is."""
    folder = demo_folder()
    if Path(config.source) != folder or (folder / DEMO_WEIGHT_NAME).exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = folder.parent / f".{DEMO_FOLDER}-{secrets.token_hex(4)}"
    try:
        build_tiny_ip_adapter(spec, building)
        with contextlib.suppress(OSError):  # another worker moved its own copy first: keep that one
            building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)


@register(Tags.compatibility)
def check_instant_adapter(app_configs: object = None, **kwargs: object) -> list[Error]:
    """ENGINE_INSTANT_ADAPTER, when set to an adapter, must be one the registry enables for the default base model
    (a non-commercial one only with a declared licence). "demo" (the embedded default) is no error with a real
    default model: the photo set's page says instant portraits need an adapter."""
    try:
        value = _setting()
        if not value or value == DEMO:
            return []
        adapter_config()
    except InstantError as exc:
        return [Error(exc.message, id="generation.E030")]
    except Exception as exc:  # noqa: BLE001 (a broken base-model registry has its own check)
        log.debug("instant_check_skipped", error=str(exc))
    return []


# --- Availability ---------------------------------------------------------------------------------------------


def accepted_count(photo_set: PhotoSet) -> int:
    return doubles.accepted_photos(photo_set=photo_set).count()


def check_photo_set(photo_set: PhotoSet) -> None:
    """Whether the set's photos may be used for instant portraits now: InstantError (409) when the photos were
    deleted, the client has no consent, or no photo is accepted."""
    if photo_set.status != PhotoSet.Status.COLLECTING or photo_set.purged_at is not None:
        raise InstantError(str(PHOTOS_DELETED), status=409)
    client = photo_set.client
    if not client.has_consent:
        raise InstantError(str(NO_CONSENT) % {"name": client.name}, status=409)
    if accepted_count(photo_set) < 1:
        raise InstantError(str(NO_ACCEPTED_PHOTOS), status=409)


def unavailable_reason(photo_set: PhotoSet) -> str:
    """Why instant portraits can't be made from the set now (the page shows it instead of a form), or ""."""
    try:
        check_photo_set(photo_set)
        adapter_config()
    except InstantError as exc:
        return exc.message
    return ""


def latest_job(*, photo_set: PhotoSet) -> Job | None:
    """The set's latest instant portraits job."""
    return Job.objects.filter(kind=KIND, payload__photo_set_id=photo_set.pk).order_by("-created_at", "-id").first()


def _busy(photo_set: PhotoSet) -> bool:
    active = Job.objects.filter(kind=KIND, payload__photo_set_id=photo_set.pk, state__in=doubles.ACTIVE_JOB_STATES)
    return active.exists()


def set_portraits(*, photo_set: PhotoSet) -> QuerySet[InstantPortrait]:
    """The set's instant portraits: newest job first, best rank first within it."""
    return InstantPortrait.objects.filter(photo_set=photo_set).order_by("-job_id", "rank", "-pk")


@dataclass(frozen=True)
class Estimate:
    images: int
    steps: int
    seconds: float

    @property
    def label(self) -> str:
        seconds = max(1, math.ceil(self.seconds))
        return f"about {seconds} s of GPU time" if seconds < 90 else f"about {round(seconds / 60)} min of GPU time"


def estimate(*, images: int, spec: BaseModelSpec | None = None) -> Estimate:
    """Images × steps × seconds per image-step of the model's family (ENGINE_SECONDS_PER_STEP, as render runs
    estimate), plus one model load."""
    spec = spec or model()
    steps = base_models.render_steps(spec, int(settings.ENGINE_INSTANT_STEPS))
    key = runs.cost_key(spec)
    per_step = float(runs.seconds_per_step().get(key, 0.0))
    load = float(runs.model_load_seconds().get(key, 0.0))
    return Estimate(images=images, steps=steps, seconds=images * steps * per_step + load)


# --- Starting -------------------------------------------------------------------------------------------------


def clean_images(value: Any) -> int:
    """The number of images asked for, 1-8; InstantError (400) otherwise."""
    try:
        images = int(value)
    except (TypeError, ValueError):
        images = 0
    if isinstance(value, bool) or not MIN_IMAGES <= images <= MAX_IMAGES:
        raise InstantError(
            _("Make between %(min)s and %(max)s instant portraits.") % {"min": MIN_IMAGES, "max": MAX_IMAGES}
        )
    return images


def start_instant(*, photo_set: PhotoSet, images: int = DEFAULT_IMAGES, user: User | None = None) -> Job:
    """Queue a "portraits.instant" job rendering `images` instant portraits (1-8, one seed each, drawn now) from
    the set's accepted photos, billed like any render. Refuses with InstantError: 400 for a bad number; 409 when
    the photos were deleted, the client has no consent, no photo is accepted, the adapter is not configured (the
    message says what to set) or a job of this set is already running; 402 out of credits."""
    images = clean_images(images)
    spec = model()
    adapter_config(spec)
    with transaction.atomic():
        locked = PhotoSet.objects.select_for_update().select_related("client").get(pk=photo_set.pk)
        check_photo_set(locked)
        if _busy(locked):
            raise InstantError(str(BUSY), status=409)
        first = secrets.randbelow(2**31)
        payload = {
            "photo_set_id": locked.pk,
            "images": images,
            "seeds": [first + index for index in range(images)],
            "base_model": spec.name,
            "family": spec.family,
        }
        job = doubles.enqueue_billed(kind=KIND, payload=payload, user=acting_user(user), error=InstantError)
    log.info("instant_portraits_requested", photo_set_id=locked.pk, job_id=job.pk, images=images)
    return job


# --- Deleting, erasure, export ----------------------------------------------------------------------------------


def delete_instant_portrait(*, portrait: InstantPortrait) -> int:
    """Delete an instant portrait and its files from storage; returns the number of files deleted."""
    files = 0
    for name in FILE_FIELDS:
        field = getattr(portrait, name)
        if field and field.name:
            field.storage.delete(field.name)
            files += 1
    portrait.delete()
    return files


@register_client_erasure_step("instant_portraits")
def erase_client_instant_portraits(client: Client) -> Mapping[str, int]:
    """Erasure step: the client's queued or running instant jobs are cancelled, and every instant portrait of
    their sets is deleted, files included. Counts only (none when there were none)."""
    set_ids = list(PhotoSet.objects.filter(client=client).values_list("pk", flat=True))
    active = Job.objects.filter(kind=KIND, payload__photo_set_id__in=set_ids, state__in=doubles.ACTIVE_JOB_STATES)
    for job in active:
        with contextlib.suppress(JobStateError):
            cancel_job(job=job)
    totals = {"instant_portraits": 0, "instant_portrait_files": 0}
    for portrait in list(InstantPortrait.objects.filter(photo_set__client=client)):
        totals["instant_portrait_files"] += delete_instant_portrait(portrait=portrait)
        totals["instant_portraits"] += 1
    return {key: value for key, value in totals.items() if value}


@register_client_export_step("instant_portraits")
def export_client_instant_portraits(client: Client, archive: zipfile.ZipFile) -> None:
    """Export step: `instant_portraits.json` (each with its photo set, recipe, likeness, flags, rank, date) and
    the images under `portraits/instant/`."""
    out = []
    portraits = InstantPortrait.objects.filter(photo_set__client=client).order_by("created_at", "pk")
    for portrait in portraits:
        entry: dict[str, Any] = {
            "id": portrait.pk,
            "photo_set": portrait.photo_set_id,
            "created_at": portrait.created_at.isoformat() if portrait.created_at else None,
            "likeness": portrait.likeness,
            "flags": portrait.flags,
            "rank": portrait.rank,
            "recipe": portrait.recipe,
            "file": None,
        }
        stored = portrait.image
        if stored and stored.name and stored.storage.exists(stored.name):
            arcname = f"portraits/instant/set-{portrait.photo_set_id}/instant-{portrait.pk}.png"
            with stored.storage.open(stored.name, "rb") as src, archive.open(arcname, "w") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            entry["file"] = arcname
        out.append(entry)
    archive.writestr("instant_portraits.json", json.dumps(out, indent=2, ensure_ascii=False, default=str))
