"""Render runs: published templates rendered for a client's digital double, and the designer's previews.

Keyword-only, typed, run in the current tenant context (a request, a task, `tenant_context()`). Refusals meant
for people raise :class:`RunError` (a :class:`~generation.doubles.DoubleError`) with a message and an HTTP
status. Nothing here imports torch (the engine's recipe helpers are imported lazily and load no ML code).

- :func:`estimate`: images and expected GPU seconds of a set of template versions (docs/runs.md, "Estimates").
- :func:`start_run`: staff pick a client's READY double and published templates (and how many images each):
  one `RenderRun`, one `RenderRunItem` and one gpu job ("runs.render_item") per template, enqueued on commit in
  an order that groups the same base model together, so that they run back to back on a warm worker.
- :func:`start_preview`: a template version on one of the studio's sample doubles (`is_test_subject`).
- :func:`start_test_render`: the double page's test render is a one-item run (kind "test") of an unsaved
  template version made from the form's settings (:func:`unsaved_version`; the item keeps them).
- :func:`retry_item` runs a failed item's job again. The actions on portraits ("more like me", re-roll, hide,
  pick) and the one portrait writer are in generation/portraits.py.
- Reads: :func:`run_list`, :func:`get_run`, :func:`run_items`, :func:`preview_panel`, ...

One GPU handler renders all of it (generation.jobs.render_portraits); it stores every portrait through
generation.portraits.store_portrait (the one writer).
"""

from __future__ import annotations

import math
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clients.models import ClientGroup
from engine.portrait import RenderConfig, stage_steps
from engine.upscale import target_size, tile_boxes
from generation.doubles import (
    RENDER_KIND,
    RUN_ITEM_KIND,
    DoubleError,
    clean_render_config,
    enqueue_billed,
    require_ready,
)
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem, RunSubject
from jobs.models import Job
from jobs.services import JobStateError, retry_job
from templates_app import base_models
from templates_app.models import Template, TemplateVersion
from tenants.access import acting_user
from tenants.models import Studio, User

log = structlog.get_logger("generation.runs")

MAX_IMAGES_PER_TEMPLATE = 32
MAX_TEMPLATES_PER_RUN = 20
PREVIEW_MAX_IMAGES = 4
ACTIVE_STATES = (Job.State.QUEUED, Job.State.RUNNING)

# Seconds of GPU time per image per denoising step at the family's native resolution, and the cost of loading
# a base model once per group. Measured on an H100 at batch 4 (docs/runs.md): SD 1.5 at 512 px renders about
# 2.6 images/s at 30 steps (1 / 2.6 / 30 = 0.013 s per image-step), SDXL at 1024 px about 0.7 images/s (0.048);
# the tiny demo model on 2 CPU cores about 0.09 (64 px, classifier-free guidance, scoring and previews included).
# Overridden by settings.ENGINE_SECONDS_PER_STEP and settings.ENGINE_MODEL_LOAD_SECONDS (dicts with the same
# keys), read at each call.
DEFAULT_SECONDS_PER_STEP: dict[str, float] = {"sd15": 0.013, "sdxl": 0.048, "tiny": 0.09}
DEFAULT_MODEL_LOAD_SECONDS: dict[str, float] = {"sd15": 8.0, "sdxl": 20.0, "tiny": 1.0}
# Estimates use the median rate of the studio's last MEASURED_SAMPLE finished run items per model kind, once
# there are some (the table above is the starting point).
MEASURED_SAMPLE = 10
DEFAULT_PICKS_PER_TEMPLATE = 2
DEFAULT_BATCH_SIZE = 4

FAMILY_LABELS = {"sd15": "SD 1.5", "sdxl": "SDXL", "tiny": "the tiny demo model"}


class RunError(DoubleError):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with."""


# --- Settings, read at call time ------------------------------------------------------------------------------


def seconds_per_step() -> dict[str, float]:
    return {**DEFAULT_SECONDS_PER_STEP, **(getattr(settings, "ENGINE_SECONDS_PER_STEP", None) or {})}


def model_load_seconds() -> dict[str, float]:
    return {**DEFAULT_MODEL_LOAD_SECONDS, **(getattr(settings, "ENGINE_MODEL_LOAD_SECONDS", None) or {})}


def picks_per_template() -> int:
    return max(0, int(getattr(settings, "RENDER_PICKS_PER_TEMPLATE", DEFAULT_PICKS_PER_TEMPLATE)))


def render_batch_size() -> int:
    return max(1, int(getattr(settings, "RENDER_BATCH_SIZE", DEFAULT_BATCH_SIZE)))


def withheld_message(count: int) -> str:
    """What the studio reads when generated images were withheld by the explicit-content check (generation.jobs):
    "1 image was withheld: it looked explicit." / "3 images were withheld: they looked explicit."."""
    return ngettext(
        "%(count)s image was withheld: it looked explicit.",
        "%(count)s images were withheld: they looked explicit.",
        count,
    ) % {"count": count}


def watermark_text(studio: Studio) -> str:
    """The text tiled over watermarked previews: the studio's watermark text when it has one, else its name."""
    return (getattr(studio, "watermark_text", "") or "").strip() or studio.name


# --- Checks shared by runs and previews -----------------------------------------------------------------------


def lora_family(*, family: str, is_demo: bool) -> str:
    """Which identity LoRAs fit a base model: its family, except the tiny demo model (its own small shapes)."""
    return "tiny" if is_demo else family


def double_family(double: DigitalDouble) -> str:
    return lora_family(family=double.family, is_demo=double.is_demo)


def _spec(version: TemplateVersion, *, enabled_only: bool = True) -> Any:
    try:
        return base_models.get_model(version.base_model, enabled_only=enabled_only)
    except base_models.UnknownBaseModel as exc:
        raise RunError(_("“%(name)s”: %(problem)s") % {"name": version.template.name, "problem": exc.message}) from None


def slots_of(version: TemplateVersion) -> int:
    """How many people a template version portrays (1: a single portrait; 2-6: a group template, run for a
    group: generation/groups.py)."""
    return max(1, int(getattr(version, "subject_slots", 1) or 1))


def require_run_ready(double: DigitalDouble) -> None:
    if double.status != DigitalDouble.Status.READY:
        raise RunError(_("This digital double is not trained yet: wait until its training has finished."), status=409)


def check_version(*, double: DigitalDouble, version: TemplateVersion) -> Any:
    """The base model spec the version renders with, after checking that it can render with this double:
    the base model exists and is enabled, its family fits the double's identity LoRA, its style LoRA fits the
    base model, and its reference image and ControlNet are there. RunError otherwise."""
    name = version.template.name
    spec = _spec(version)
    wanted = lora_family(family=spec.family, is_demo=spec.is_demo)
    have = double_family(double)
    if wanted != have:
        raise RunError(
            _(
                "“%(name)s” renders with %(model)s (%(family)s), and this digital double was trained for "
                "%(double_family)s: its likeness can't be used with that model. Choose templates made for the "
                "double's base model family."
            )
            % {
                "name": name,
                "model": spec.display_name,
                "family": FAMILY_LABELS.get(wanted, wanted),
                "double_family": FAMILY_LABELS.get(have, have),
            }
        )
    lora = version.style_lora
    if lora is not None and lora.family != spec.family:
        raise RunError(
            _("“%(name)s”: its style LoRA “%(lora)s” is for %(lora_family)s, not for %(family)s.")
            % {"name": name, "lora": lora.name, "lora_family": lora.family, "family": spec.family}
        )
    mode = version.reference_mode
    if mode and not (version.reference_image and version.reference_image.name):
        raise RunError(
            _("“%(name)s” uses a reference image, and none is stored: edit the template.") % {"name": name}, status=409
        )
    if mode in ("pose", "canny") and mode not in (getattr(settings, "ENGINE_CONTROLNETS", None) or {}):
        raise RunError(
            _("“%(name)s” needs the ControlNet %(mode)r, which this platform has not configured (ENGINE_CONTROLNETS).")
            % {"name": name, "mode": mode},
            status=409,
        )
    return spec


def _count(value: Any, name: str, maximum: int = MAX_IMAGES_PER_TEMPLATE) -> int:
    try:
        if isinstance(value, bool | float):
            raise ValueError
        count = int(str(value).strip())
    except (TypeError, ValueError):
        raise RunError(_("“%(name)s”: the number of images must be a whole number.") % {"name": name}) from None
    if not 1 <= count <= maximum:
        raise RunError(_("“%(name)s”: render between 1 and %(max)s images.") % {"name": name, "max": maximum})
    return count


# --- Test renders: a one-item run of an unsaved template version ---------------------------------------------

TEST_RENDER_NAME = "Test render"
#: The render settings a test render's item keeps (doubles.RenderRequest, less its seeds: the item has them).
TEST_RENDER_SETTINGS = ("prompt", "negative_prompt", "scheduler", "steps", "guidance", "identity_weight")


def unsaved_version(*, double: DigitalDouble, settings: Mapping[str, Any], images: int = 1) -> TemplateVersion:
    """The template version a test render renders: never saved, made from the double page's render settings
    (doubles.clean_render_config), on the double's own base model, no style LoRA, no reference image."""
    return TemplateVersion(
        template=Template(name=TEST_RENDER_NAME),
        number=0,
        prompt=str(settings.get("prompt") or ""),
        negative_prompt=str(settings.get("negative_prompt") or ""),
        base_model=double.base_model,
        scheduler=str(settings.get("scheduler") or "dpmpp_2m_karras"),
        steps=int(settings.get("steps") or 30),
        guidance=float(settings.get("guidance", 7.0)),
        identity_weight=float(settings.get("identity_weight", 1.0)),
        images_per_run=max(1, int(images)),
        # A test render checks the double quickly: its face pass runs, no print-size upscale.
        long_side=0,
    )


def item_version(item: RenderRunItem) -> TemplateVersion:
    """The version an item renders: its template's, or a test render's unsaved one (from the item's settings)."""
    if item.template_version_id is not None:
        return item.template_version
    return unsaved_version(double=item.run.double, settings=item.settings or {}, images=item.images)


def start_test_render(*, double: DigitalDouble, config: Mapping[str, Any], user: User | None = None) -> RenderRun:
    """A test render from the double's page (prompt with {subject}, steps, guidance, identity weight, seeds or
    images): a one-item run of an unsaved template version, rendered by the same pipeline as every run. Refuses
    with DoubleError: 409 when the double is not ready, 400 for a bad config; 402 when out of credits."""
    require_ready(double)
    request = clean_render_config(config)
    settings_ = {key: value for key, value in request.as_payload().items() if key in TEST_RENDER_SETTINGS}
    version = unsaved_version(double=double, settings=settings_, images=len(request.seeds))
    run = _create_run(
        double=double,
        kind=RenderRun.Kind.TEST,
        entries=[(version, len(request.seeds))],
        user=acting_user(user),
        seeds=[list(request.seeds)],
        settings=settings_,
    )
    log.info("test_render_requested", double_id=double.pk, run_id=run.pk, images=len(request.seeds))
    return run


# --- Estimates ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemEstimate:
    version: TemplateVersion
    images: int
    base_model: str
    cost_key: str  # "sd15", "sdxl" or "tiny": the row of the seconds-per-step table
    steps: int  # denoising steps per image (img2img runs steps × strength)
    width: int
    height: int
    seconds: float


@dataclass(frozen=True)
class Estimate:
    """What a run will cost: images, and the expected GPU seconds (rendering + one model load per base model)."""

    items: list[ItemEstimate]
    model_loads: dict[str, float] = field(default_factory=dict)

    @property
    def images(self) -> int:
        return sum(item.images for item in self.items)

    @property
    def render_seconds(self) -> float:
        return sum(item.seconds for item in self.items)

    @property
    def load_seconds(self) -> float:
        return sum(self.model_loads.values())

    @property
    def gpu_seconds(self) -> float:
        return round(self.render_seconds + self.load_seconds, 2)

    @property
    def label(self) -> str:
        """ "about 40 s" / "about 3 min" of GPU time."""
        seconds = self.gpu_seconds
        if seconds < 90:
            return f"about {max(1, math.ceil(seconds))} s"
        return f"about {round(seconds / 60)} min"


def cost_key(spec: Any) -> str:
    """The row of the seconds-per-step table of a base model: "tiny" for the demo model, else its family."""
    return "tiny" if spec.is_demo else str(spec.family)


def item_work(version: TemplateVersion, images: int, spec: Any) -> tuple[float, int, int, int]:
    """(image-steps at the model's native size, steps per image, width, height) of rendering `images` images of
    `version` on `spec`: the quantity a seconds-per-step rate multiplies."""
    native = int(spec.native_resolution)
    width, height = int(version.width or native), int(version.height or native)
    steps = base_models.render_steps(spec, int(version.steps))
    if version.reference_mode == TemplateVersion.ReferenceMode.IMG2IMG:
        steps = max(1, int(steps * float(version.strength)))  # img2img denoises only the last steps
    pixels = (width * height) / float(native * native)
    if version.reference_mode == TemplateVersion.ReferenceMode.PHOTO:
        # A template photo: no base render; each face (one counted) is inpainted at the native size.
        per_face = max(1, int(steps * float(version.strength)))
        return images * per_face, per_face, native, native
    extra = stage_work(version, spec, width, height, steps)
    # Images render in batches of RENDER_BATCH_SIZE. On a GPU a partial batch takes about as long as a full one
    # (H100, SD 1.5 @ 512: batch 1 renders 0.68 images/s, batch 4 2.0-2.6), so it counts as full; on the CPU
    # (the tiny demo model) time is proportional to the images.
    batch = render_batch_size()
    slots = images if cost_key(spec) == "tiny" else math.ceil(images / batch) * batch
    return slots * steps * pixels + images * extra, steps, width, height


def output_long_side(version: TemplateVersion, spec: Any) -> int:
    """The long side (px) `version`'s portraits are delivered at on `spec`; 0: the render's own size. The demo
    model's is capped at ENGINE_DEMO_MAX_LONG_SIDE (its images are noise, and the demo runs on the CPU)."""
    asked = int(getattr(version, "long_side", 0) or 0)
    if asked and spec.is_demo:
        return min(asked, int(getattr(settings, "ENGINE_DEMO_MAX_LONG_SIDE", 512)))
    return asked


def upscale_denoise(version: TemplateVersion, spec: Any) -> float:
    """How much the upscale's tiled re-render changes: the version's; 0 (enlarge only) on the demo model, whose
    images are noise (the CPU demo stays quick; the tiles are the same engine code on every model)."""
    return 0.0 if spec.is_demo else float(getattr(version, "upscale_denoise", 0.0) or 0.0)


def stage_work(version: TemplateVersion, spec: Any, width: int, height: int, steps: int) -> float:
    """Image-steps at the native size that the face pass (one face counted) and the upscale's tiled re-render add
    to one image of `version` (engine.portrait: each denoises int(steps x denoise) steps of a native-size crop)."""
    config = RenderConfig(prompt="", steps=steps)
    work = 0.0
    if getattr(version, "face_pass", False):
        denoise = float(version.face_denoise)
        work += int(stage_steps(config, None, denoise) * denoise)
    long_side = output_long_side(version, spec)
    denoise = upscale_denoise(version, spec)
    if long_side > max(width, height) and denoise > 0:
        tile = min(width, height)
        tiles = len(tile_boxes(target_size((width, height), long_side), tile, max(8, tile // 8)))
        native = int(spec.native_resolution)
        work += tiles * int(stage_steps(config, None, denoise) * denoise) * (tile * tile) / (native * native)
    return work


def measured_seconds_per_step(key: str, *, sample: int = MEASURED_SAMPLE) -> float | None:
    """The median seconds per image-step (at the native size) that this studio's last `sample` finished run items
    on models of `key` really took, whole job but the model load (the render job records it); None before the
    first. One query."""
    rows = (
        Job.objects.filter(kind=RUN_ITEM_KIND, state=Job.State.SUCCEEDED, result__timing__cost_key=key)
        .order_by("-finished_at", "-id")
        .values_list("result__timing__seconds_per_step", flat=True)[:sample]
    )
    rates = sorted(float(rate) for rate in rows if rate)
    if not rates:
        return None
    middle = len(rates) // 2
    return rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2


def _item_estimate(version: TemplateVersion, images: int, spec: Any, per_step: Mapping[str, float]) -> ItemEstimate:
    key = cost_key(spec)
    work, steps, width, height = item_work(version, images, spec)
    rate = float(per_step.get(key, per_step.get(spec.family, DEFAULT_SECONDS_PER_STEP["sdxl"])))
    return ItemEstimate(version, images, spec.name, key, steps, width, height, round(work * rate, 2))


def estimate(*, double: DigitalDouble, items: Sequence[tuple[TemplateVersion, int]]) -> Estimate:
    """Images and expected GPU seconds of rendering these versions (count images each) for the double: per item
    images (on a GPU rounded up to whole batches) × steps × seconds per image-step of the base model's family
    (scaled by pixels against the native size), plus one model load per base model (docs/runs.md). Checks the
    items as start_run does (RunError)."""
    per_step, loads = dict(seconds_per_step()), model_load_seconds()
    out: list[ItemEstimate] = []
    measured: dict[str, float | None] = {}
    model_loads: dict[str, float] = {}
    for version, count in items:
        spec = check_version(double=double, version=version)
        images = _count(count, version.template.name)
        key = cost_key(spec)
        if key not in measured:  # what this platform's workers really took, once there is a figure
            measured[key] = measured_seconds_per_step(key)
            if measured[key]:
                per_step[key] = float(measured[key])
        item = _item_estimate(version, images, spec, per_step)
        out.append(item)
        model_loads.setdefault(spec.name, float(loads.get(item.cost_key, loads.get(spec.family, 0.0))))
    return Estimate(items=out, model_loads=model_loads)


# --- Starting runs --------------------------------------------------------------------------------------------


def group_order(base_models_in_order: Sequence[str]) -> list[int]:
    """Indices of items in enqueue order: grouped by base model, groups in the order their model first
    appears, items in their original order within a group (a stable sort)."""
    first: dict[str, int] = {}
    for index, name in enumerate(base_models_in_order):
        first.setdefault(name, index)
    return sorted(range(len(base_models_in_order)), key=lambda i: (first[base_models_in_order[i]], i))


def draw_seeds(count: int) -> list[int]:
    """Random seeds (0..2**32-1), drawn once when the run starts and stored: a retried job renders the same."""
    seeds: list[int] = []
    while len(seeds) < count:
        seed = secrets.randbelow(2**32)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def _create_run(
    *,
    double: DigitalDouble,
    kind: str,
    entries: Sequence[tuple[TemplateVersion, int]],
    user: User | None,
    seeds: Sequence[list[int]] | None = None,
    settings: Mapping[str, Any] | None = None,
    plan: Estimate | None = None,
    group: ClientGroup | None = None,
    subjects: Sequence[DigitalDouble] = (),
) -> RenderRun:
    """The run, its items in grouped order, and one job per item (enqueued on commit, in that order). Seeds are
    drawn now unless given (per entry); an unsaved version's item keeps its `settings`. A group run
    (generation/groups.py) gives its `group`, its estimate (`plan`) and each slot's double in `subjects` (slot 1
    is `double`): every one of them is locked and must still be ready."""
    plan = plan or estimate(double=double, items=entries)
    order = group_order([item.base_model for item in plan.items])
    with transaction.atomic():
        wanted = [double.pk, *(s.pk for s in subjects)]
        rows = DigitalDouble.objects.select_for_update().filter(pk__in=wanted).order_by("pk").in_bulk()
        locked = rows.get(double.pk)
        if locked is None or any(s.pk not in rows for s in subjects):
            raise RunError(_("This digital double no longer exists."), status=404)
        for row in rows.values():
            require_run_ready(row)
        run = RenderRun.objects.create(
            double=locked, group=group, kind=kind, images=plan.images, gpu_seconds=plan.gpu_seconds, created_by=user
        )
        RunSubject.objects.bulk_create(
            [RunSubject(run=run, slot=slot, double=rows[s.pk]) for slot, s in enumerate(subjects, start=1)]
        )
        people = {"people": len(subjects)} if subjects else {}
        for position, index in enumerate(order):
            part = plan.items[index]
            saved = part.version.pk is not None
            item = RenderRunItem.objects.create(
                run=run,
                template_version=part.version if saved else None,
                settings={} if saved else dict(settings or {}),
                images=part.images,
                position=position,
                seeds=list(seeds[index]) if seeds is not None else draw_seeds(part.images),
                gpu_seconds=part.seconds,
            )
            item.job = enqueue_billed(
                kind=RUN_ITEM_KIND,
                payload={"item_id": item.pk, "run_id": run.pk, "double_id": locked.pk, **people},
                user=user,
                error=RunError,
            )
            item.save(update_fields=["job"])
    log.info("render_run_started", run_id=run.pk, kind=kind, items=len(order), images=plan.images, gpu=plan.gpu_seconds)
    return run


def start_run(*, double: DigitalDouble, items: Sequence[tuple[Template, Any]], user: User | None = None) -> RenderRun:
    """Render published templates (their current version; `count` images each, 1 to 32) for a client's READY
    double. One item and one gpu job per template, enqueued on commit grouped by base model.

    Refuses with RunError: 409 when the double is not ready or a template is not published; 400 for no
    template, a template twice, a bad count, a base model of another family than the double's (its identity
    LoRA would not fit), an unknown or disabled base model; 409 for a reference image or ControlNet missing."""
    return _create_run(
        double=double, kind=RenderRun.Kind.CLIENT, entries=client_entries(double, items), user=acting_user(user)
    )


def estimate_client_run(*, double: DigitalDouble, items: Sequence[tuple[Template, Any]]) -> Estimate:
    """What start_run would cost for these templates: the same checks and refusals, nothing started."""
    return estimate(double=double, items=client_entries(double, items))


def client_entries(double: DigitalDouble, items: Sequence[tuple[Template, Any]]) -> list[tuple[TemplateVersion, int]]:
    """The (current version, images) of each template of a client run, checked as start_run documents."""
    require_run_ready(double)
    if not items:
        raise RunError(_("Pick at least one template."))
    if len(items) > MAX_TEMPLATES_PER_RUN:
        raise RunError(_("Run at most %(max)s templates at once.") % {"max": MAX_TEMPLATES_PER_RUN})
    seen: set[int] = set()
    entries: list[tuple[TemplateVersion, int]] = []
    for template, count in items:
        if template.pk in seen:
            raise RunError(_("“%(name)s” is listed twice: give it one number of images.") % {"name": template.name})
        seen.add(template.pk)
        if template.status != Template.Status.PUBLISHED or template.current_version_id is None:
            raise RunError(
                _("“%(name)s” is not published: publish it before running it for clients.") % {"name": template.name},
                409,
            )
        version = template.current_version
        assert version is not None
        version.template = template  # names in messages without another query
        if slots_of(version) > 1:
            raise RunError(
                _(
                    "“%(name)s” portrays %(slots)s people: run it for a group of clients (Clients → Groups), each "
                    "with their own digital double."
                )
                % {"name": template.name, "slots": slots_of(version)}
            )
        entries.append((version, _count(count, template.name)))
    return entries


def start_preview(*, version: TemplateVersion, double: DigitalDouble, user: User | None = None) -> RenderRun:
    """Render a template version (published or not) on one of the studio's sample doubles: a preview run of
    min(images per run, 4) images. RunError: 409 when the double is not a sample or not ready; 400 when the
    version can't render with it (see check_version)."""
    if not double.is_test_subject:
        raise RunError(_("Previews render on a sample double: choose one of the studio's sample doubles."), status=409)
    require_run_ready(double)
    count = max(1, min(int(version.images_per_run or 1), PREVIEW_MAX_IMAGES))
    return _create_run(double=double, kind=RenderRun.Kind.PREVIEW, entries=[(version, count)], user=acting_user(user))


def set_test_subject(*, double: DigitalDouble, is_test_subject: bool) -> DigitalDouble:
    """Mark a double as one of the studio's sample doubles (template previews render on them), or not."""
    DigitalDouble.objects.filter(pk=double.pk).update(is_test_subject=bool(is_test_subject))
    double.is_test_subject = bool(is_test_subject)
    return double


def retry_item(*, item: RenderRunItem, user: User | None = None) -> Job:
    """Run a failed or cancelled item's job again (same seeds; portraits of the earlier attempt are replaced).
    RunError 409 for a job in another state."""
    require_run_ready(item.run.double)
    if item.job is None:
        with transaction.atomic():
            item.job = enqueue_billed(
                kind=RUN_ITEM_KIND,
                payload={
                    "item_id": item.pk,
                    "run_id": item.run_id,
                    "double_id": item.run.double_id,
                    **({"people": item.run.subjects.count()} if item.run.group_id else {}),
                },
                user=acting_user(user),
                error=RunError,
            )
            item.save(update_fields=["job"])
        return item.job
    try:
        return retry_job(job=item.job, user=acting_user(user))
    except JobStateError as exc:
        raise RunError(str(exc), status=409) from None


# --- Reads ----------------------------------------------------------------------------------------------------


def _items_prefetch() -> Prefetch:
    return Prefetch(
        "items",
        queryset=RenderRunItem.objects.select_related("template_version__template", "job").order_by("position", "pk"),
    )


def run_list(*, kind: str | None = RenderRun.Kind.CLIENT) -> QuerySet[RenderRun]:
    """Runs, newest first, with their client, items (templates, jobs) and portrait counts: a fixed number of
    queries per page. Test renders belong to their double's page, never to the runs' lists and pages."""
    qs = (
        RenderRun.objects.select_related("double__client", "created_by", "group")
        .prefetch_related(_items_prefetch())
        .annotate(portrait_count=Count("portraits", distinct=True))
        .order_by("-created_at", "-id")
    )
    return qs.filter(kind=kind) if kind else qs.exclude(kind=RenderRun.Kind.TEST)


def get_run(*, renderrun_id: int) -> RenderRun:
    """The studio's run (with its double, client and items), or Http404 (a test render has no run page)."""
    return get_object_or_404(
        RenderRun.objects.select_related("double__client", "created_by", "group")
        .prefetch_related(_items_prefetch())
        .exclude(kind=RenderRun.Kind.TEST),
        pk=renderrun_id,
    )


@dataclass
class ItemView:
    """One item of a run page: its template version, job, portraits (rank order), small action jobs (unfinished
    or failed) and how many of its images the explicit-content check withheld (its job's and its actions')."""

    item: RenderRunItem
    portraits: list[Portrait]
    action_jobs: list[Job]
    withheld: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def withheld_message(self) -> str:
        return withheld_message(self.withheld) if self.withheld else ""

    @property
    def active(self) -> bool:
        jobs = [self.item.job, *self.action_jobs]
        return any(job is not None and not job.is_terminal for job in jobs)

    @property
    def visible(self) -> list[Portrait]:
        return [p for p in self.portraits if not p.is_hidden]

    @property
    def hidden(self) -> list[Portrait]:
        return [p for p in self.portraits if p.is_hidden]


def _rank_key(portrait: Portrait) -> tuple[int, int, int]:
    return (portrait.rank if portrait.rank is not None else 10**6, portrait.pk, 0)


def _withheld(job: Job | None) -> int:
    """How many images of a job's render the explicit-content check withheld (its result's "withheld")."""
    value = (job.result or {}).get("withheld") if job is not None and job.state == Job.State.SUCCEEDED else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def withheld_reasons(job: Job | None) -> list[str]:
    """What the explicit-content check found in a job's withheld images, for staff: "exposed breast 0.91" (the
    detector's labels and scores from the job's result; never pixels)."""
    safety = ((job.result or {}).get("safety") or {}) if job is not None else {}
    reasons = []
    for entry in safety.get("reasons") or []:
        for label, score in entry.get("findings") or []:
            words = str(label).lower().split("_")
            if words and words[-1] in ("exposed", "covered"):
                words = [words[-1], *words[:-1]]
            reasons.append(f"{' '.join(words)} {float(score):.2f}")
    return reasons


def run_items(*, run: RenderRun, items: Sequence[RenderRunItem] | None = None) -> list[ItemView]:
    """The run's items with their portraits, their unfinished or failed action jobs ("more like me",
    "re-roll") and the images withheld as explicit (by the item's job and its succeeded action jobs): three
    queries whatever the number of items and portraits."""
    items = list(items if items is not None else run.items.all())
    ids = [item.pk for item in items]
    portraits: dict[int, list[Portrait]] = defaultdict(list)
    for portrait in Portrait.objects.filter(item_id__in=ids).order_by("rank", "pk"):
        portrait.run = run  # no query per portrait for templates that read it
        portraits[portrait.item_id].append(portrait)
    jobs: dict[int, list[Job]] = defaultdict(list)
    withheld: dict[int, int] = defaultdict(int)
    reasons: dict[int, list[str]] = defaultdict(list)
    action_jobs = Job.objects.filter(kind=RENDER_KIND, payload__run_id=run.pk).filter(
        ~Q(state=Job.State.SUCCEEDED) | Q(result__withheld__gt=0)
    )
    for job in action_jobs.order_by("created_at", "pk"):
        item_id = (job.payload or {}).get("item_id")
        if item_id not in ids:
            continue
        if job.state == Job.State.SUCCEEDED:
            withheld[item_id] += _withheld(job)
            reasons[item_id] += withheld_reasons(job)
        else:
            jobs[item_id].append(job)
    for item in items:
        item.run = run
    return [
        ItemView(
            item=item,
            portraits=sorted(portraits[item.pk], key=_rank_key),
            action_jobs=jobs[item.pk],
            withheld=_withheld(item.job) + withheld[item.pk],
            reasons=withheld_reasons(item.job) + reasons[item.pk],
        )
        for item in items
    ]


def get_item(*, run: RenderRun, renderrunitem_id: int) -> RenderRunItem:
    return get_object_or_404(
        RenderRunItem.objects.select_related("template_version__template", "job"), pk=renderrunitem_id, run=run
    )


def published_templates() -> list[Template]:
    """Published templates with a current version, for the new-run page (one query)."""
    return list(
        Template.objects.filter(status=Template.Status.PUBLISHED, current_version__isnull=False)
        .select_related("current_version", "current_version__style_lora")
        .order_by("name", "pk")
    )


def sample_doubles() -> list[DigitalDouble]:
    """The studio's READY sample doubles (template previews render on them)."""
    return list(
        DigitalDouble.objects.filter(is_test_subject=True, status=DigitalDouble.Status.READY)
        .select_related("client")
        .order_by("-trained_at", "-pk")
    )


@dataclass
class PreviewSide:
    """The latest preview of one template version: its run, item (with its job) and portraits."""

    version: TemplateVersion | None
    run: RenderRun | None = None
    item: RenderRunItem | None = None
    portraits: list[Portrait] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.item is not None and self.item.job is not None and not self.item.job.is_terminal


def latest_preview(*, version: TemplateVersion | None) -> PreviewSide:
    if version is None:
        return PreviewSide(version=None)
    item = (
        RenderRunItem.objects.filter(template_version=version, run__kind=RenderRun.Kind.PREVIEW)
        .select_related("run__double__client", "job")
        .order_by("-run__created_at", "-pk")
        .first()
    )
    if item is None:
        return PreviewSide(version=version)
    portraits = list(Portrait.objects.filter(item=item).order_by("rank", "pk"))
    return PreviewSide(version=version, run=item.run, item=item, portraits=portraits)


def previous_version(*, version: TemplateVersion) -> TemplateVersion | None:
    return (
        TemplateVersion.objects.filter(template_id=version.template_id, number=version.number - 1)
        .select_related("template")
        .first()
    )


def runs_of_double(*, double: DigitalDouble, limit: int = 10) -> list[RenderRun]:
    """The double's latest runs (client runs and previews), for its page."""
    return list(run_list(kind=None).filter(double=double)[:limit])
