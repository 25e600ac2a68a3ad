"""Templates, their immutable versions and style LoRAs: the actions (writes) and the settings check they share.

Keyword-only, typed, run in the current tenant context (a request, a task, `tenant_context()`), each action in
one transaction. Refusals meant for people raise :class:`TemplateError` with a message and an HTTP status (like
generation.doubles.DoubleError); invalid render settings raise :class:`SettingsInvalid`, which also carries the
message of every field (forms and the API show them next to the field).

Versioning: a template's render settings (prompt, base model, style LoRA, reference image, scheduler, steps,
guidance, size, identity weight, images per run, price) live in `TemplateVersion` rows that are never updated.
Saving a template makes a new version only when those settings differ from the current version's; name,
description, category and cover are the template's own and change in place. Portraits point at the version
that made them, so a past result always has its exact recipe.

Files: covers and reference images are decoded with the intake's checks (engine.images.load_photo:
type from the bytes, size, pixels, bombs) and stored re-encoded as clean JPEGs (no metadata) under neutral
private paths. Versions share a reference image file when it did not change; files are never deleted while a
row names them (templates are archived, not deleted; a style LoRA can only be deleted while no version uses it).
Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max

from engine import prompts
from engine.images import ImageLimits, PhotoRejected, encode_clean_jpeg, load_photo
from templates_app import base_models, lora_files
from templates_app.models import Category, StyleLora, Template, TemplateVersion
from templates_app.starters import get_starter
from tenants.context import require_studio_id
from tenants.models import User

log = structlog.get_logger("templates_app")

SUBJECT = "{subject}"
MAX_PROMPT_CHARS = 1000
MAX_NOTE_CHARS = 200
SCHEDULERS = tuple(TemplateVersion.Scheduler.values)
REFERENCE_MODES = tuple(TemplateVersion.ReferenceMode.values)
CONTROLNET_MODES = ("pose", "canny")
SIZE_STEP = 64
MIN_SIDE, MAX_SIDE = 256, 2048
MAX_PRICE = Decimal("999999.99")
REFERENCE_MIN_SIDE = 256
REFERENCE_MAX_SIDE = 2048
COVER_MIN_SIDE = 128
COVER_MAX_SIDE = 1200
MAX_NAME_CHARS = Template._meta.get_field("name").max_length or 120

# The render settings a version holds, in the order pages show them.
RENDER_FIELDS = (
    "prompt",
    "negative_prompt",
    "base_model",
    "style_lora",
    "style_weight",
    "reference_image",
    "reference_mode",
    "strength",
    "scheduler",
    "steps",
    "guidance",
    "width",
    "height",
    "identity_weight",
    "images_per_run",
    "price_per_image",
)


class TemplateError(Exception):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with; `field`
    names the form field it is about, when there is one."""

    def __init__(self, message: str, status: int = 400, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


class SettingsInvalid(TemplateError):
    """Render settings that fail the checks: `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        field, messages = next(iter(errors.items()))
        super().__init__(messages[0], 400, field=field)
        self.errors = errors


def _user(user: Any) -> User | None:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- Render settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSettings:
    """Checked render settings, ready to become a version. `reference_name` is a stored reference image kept
    from the current version; `reference_upload` the clean JPEG bytes of a new one."""

    prompt: str
    negative_prompt: str
    base_model: str
    style_lora: StyleLora | None
    style_weight: float
    reference_mode: str
    strength: float
    scheduler: str
    steps: int
    guidance: float
    width: int | None
    height: int | None
    identity_weight: float
    images_per_run: int
    price_per_image: Decimal
    reference_name: str = ""
    reference_upload: bytes | None = None

    def comparable(self) -> dict[str, Any]:
        """The values a version is compared on (a new reference upload never equals anything stored)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("reference_upload",)}
        values["style_lora"] = self.style_lora.pk if self.style_lora is not None else None
        values["reference_name"] = object() if self.reference_upload is not None else self.reference_name
        return values


def version_values(version: TemplateVersion) -> dict[str, Any]:
    """A version's render settings as clean_settings input (and for comparisons)."""
    return {
        "prompt": version.prompt,
        "negative_prompt": version.negative_prompt,
        "base_model": version.base_model,
        "style_lora": version.style_lora_id,
        "style_weight": version.style_weight,
        "reference_mode": version.reference_mode,
        "strength": version.strength,
        "scheduler": version.scheduler,
        "steps": version.steps,
        "guidance": version.guidance,
        "width": version.width,
        "height": version.height,
        "identity_weight": version.identity_weight,
        "images_per_run": version.images_per_run,
        "price_per_image": version.price_per_image,
    }


def _comparable_version(version: TemplateVersion) -> dict[str, Any]:
    values = version_values(version)
    values["reference_name"] = version.reference_image.name or ""
    values["price_per_image"] = Decimal(version.price_per_image)
    return values


def _defaults() -> dict[str, Any]:
    def default(name: str) -> Any:
        return TemplateVersion._meta.get_field(name).get_default()

    values = {
        name: default(name)
        for name in (
            "negative_prompt",
            "style_weight",
            "reference_mode",
            "strength",
            "scheduler",
            "steps",
            "guidance",
            "identity_weight",
            "images_per_run",
            "price_per_image",
        )
    }
    values.update(prompt="", base_model="", style_lora=None, width=None, height=None)
    return values


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Checker:
    """Collects every field's message, so that a form shows them all at once."""

    def __init__(self, data: Mapping[str, Any], base: Mapping[str, Any]) -> None:
        self.data = data
        self.base = base
        self.errors: dict[str, list[str]] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raw(self, name: str) -> Any:
        return self.data[name] if name in self.data else self.base.get(name)

    def number(self, name: str, label: str, low: float, high: float, *, whole: bool = False) -> Any:
        value = self.raw(name)
        if _empty(value):
            self.fail(name, f"Enter the {label}.")
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            if whole:
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                number: Any = int(str(value).strip()) if not isinstance(value, int) else value
            else:
                number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
                if number != number or number in (float("inf"), float("-inf")):  # NaN, infinity
                    raise ValueError
        except (TypeError, ValueError):
            kind = "a whole number" if whole else "a number"
            self.fail(name, f"The {label} must be {kind}.")
            return None
        if not low <= number <= high:
            self.fail(name, f"The {label} must be between {low:g} and {high:g}.")
            return None
        return number


_PLACEHOLDER = re.compile(r"\{[^{}]*\}|\[\s*subject\s*\]|<\s*subject\s*>", re.IGNORECASE)


def _check_prompt(check: _Checker) -> str:
    prompt = str(check.raw("prompt") or "").strip()
    if not prompt:
        check.fail("prompt", "Write a prompt: it describes the portrait, with {subject} where the client goes.")
        return prompt
    if len(prompt) > MAX_PROMPT_CHARS:
        check.fail("prompt", f"The prompt is {len(prompt)} characters long: {MAX_PROMPT_CHARS} at most.")
    elif problem := prompts.length_problem(prompt):
        check.fail("prompt", problem)
    wrong = [m.group(0) for m in _PLACEHOLDER.finditer(prompt) if m.group(0) != SUBJECT]
    if wrong:
        check.fail(
            "prompt",
            f"Write the placeholder exactly as {SUBJECT} (lower case, in curly braces, no spaces): "
            f"{wrong[0]} would appear in the prompt as written.",
        )
    elif SUBJECT not in prompt:
        check.fail(
            "prompt",
            f"Put {SUBJECT} in the prompt where the client should appear (e.g. “studio portrait of {SUBJECT}”): "
            "it is replaced by the client's trigger phrase when the portraits are rendered.",
        )
    return prompt


def _check_base_model(check: _Checker) -> Any:
    name = str(check.raw("base_model") or "").strip()
    if not name:
        check.fail("base_model", "Choose a base model.")
        return None
    try:
        return base_models.get_model(name)
    except base_models.UnknownBaseModel as exc:
        check.fail("base_model", exc.message)
        return None


def _check_style_lora(check: _Checker, spec: Any) -> StyleLora | None:
    value = check.raw("style_lora")
    if _empty(value):
        return None
    if isinstance(value, StyleLora):
        lora: StyleLora | None = StyleLora.objects.filter(pk=value.pk).first()
    else:
        try:
            lora = StyleLora.objects.filter(pk=int(str(value).strip())).first()
        except (TypeError, ValueError):
            lora = None
    if lora is None:
        check.fail("style_lora", "Choose one of your studio's style LoRAs (or none).")
        return None
    if spec is not None:
        target_label = lora_files.FAMILY_LABELS.get(spec.family, spec.family)
        if lora.family != spec.family:
            found = lora_files.FAMILY_LABELS.get(lora.family, lora.family)
            check.fail(
                "style_lora",
                f"This style LoRA was made for {found}; the template uses an {target_label} model "
                f"({spec.display_name}). Choose a matching LoRA or base model.",
            )
        elif lora.cross_attention_dim:
            width = lora_files.target_for(spec).cross_attention_dim
            if width != lora.cross_attention_dim:
                check.fail(
                    "style_lora",
                    f"This style LoRA's layers take {lora.cross_attention_dim} features (it was checked against "
                    f"{lora.base_model or 'another model'}); {spec.display_name} expects {width}. Upload it again "
                    "for this base model.",
                )
    return lora


def _check_size(check: _Checker) -> tuple[int | None, int | None]:
    sides: dict[str, int | None] = {}
    for name in ("width", "height"):
        value = check.raw(name)
        if _empty(value):
            sides[name] = None
            continue
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            check.fail(name, f"The {name} must be a whole number of pixels (or empty for the model's own size).")
            sides[name] = None
            continue
        if not MIN_SIDE <= number <= MAX_SIDE or number % SIZE_STEP:
            check.fail(name, f"The {name} must be a multiple of {SIZE_STEP} between {MIN_SIDE} and {MAX_SIDE} pixels.")
            sides[name] = None
            continue
        sides[name] = number
    given = [name for name in ("width", "height") if not _empty(check.raw(name))]
    if len(given) == 1:
        missing = "height" if given == ["width"] else "width"
        check.fail(missing, "Give both the width and the height, or neither (the base model's own size).")
    return sides["width"], sides["height"]


def _check_price(check: _Checker) -> Decimal | None:
    value = check.raw("price_per_image")
    if _empty(value):
        check.fail("price_per_image", "Enter the price per image (0 for none).")
        return None
    try:
        if isinstance(value, bool | float):
            value = repr(value) if isinstance(value, float) else "x"
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        check.fail("price_per_image", "The price per image must be an amount like 12.50.")
        return None
    if not price.is_finite():
        check.fail("price_per_image", "The price per image must be an amount like 12.50.")
        return None
    if price < 0:
        check.fail("price_per_image", "The price per image can't be negative.")
        return None
    if price > MAX_PRICE:
        check.fail("price_per_image", f"The price per image is at most {MAX_PRICE}.")
        return None
    if price != price.quantize(Decimal("0.01")):
        check.fail("price_per_image", "The price per image has at most 2 decimals.")
        return None
    return price.quantize(Decimal("0.01"))


def _image_limits(min_side: int) -> Any:

    return ImageLimits(
        max_bytes=int(django_settings.INTAKE_MAX_UPLOAD_BYTES),
        max_pixels=int(django_settings.INTAKE_MAX_PIXELS),
        min_side=min_side,
    )


def clean_image(upload: Any, *, min_side: int, max_side: int, what: str) -> bytes:
    """Decode an uploaded image with the intake's checks and return it as a clean JPEG (no metadata, at most
    `max_side` pixels on its long side); TemplateError with the specific reason otherwise."""

    try:
        if hasattr(upload, "seek"):
            upload.seek(0)
        loaded = load_photo(upload, limits=_image_limits(min_side))
    except PhotoRejected as exc:
        raise TemplateError(f"The {what} can't be used: {exc.message}") from None
    return encode_clean_jpeg(loaded.image, quality=95, max_side=max_side)


def _check_reference(check: _Checker) -> tuple[str, bytes | None, str]:
    """(kept file name, new clean JPEG bytes, mode)."""
    upload = check.data.get("reference_image")
    remove = check.data.get("remove_reference_image") in (True, "on", "true", "1", 1)
    kept = "" if remove else str(check.base.get("reference_name") or "")
    new_bytes = None
    if isinstance(upload, str) and upload.strip():
        check.fail("reference_image", "Send the reference image as a file (a multipart upload), not as text.")
    elif upload is not None and not isinstance(upload, str) and not _empty(upload):
        try:
            new_bytes = clean_image(
                upload, min_side=REFERENCE_MIN_SIDE, max_side=REFERENCE_MAX_SIDE, what="reference image"
            )
        except TemplateError as exc:
            check.fail("reference_image", exc.message)
    mode = str(check.raw("reference_mode") or "").strip()
    if mode not in REFERENCE_MODES:
        check.fail("reference_mode", "Choose how the reference image is used: composition, pose or edges (or none).")
        return kept, new_bytes, ""
    has_image = new_bytes is not None or bool(kept) or "reference_image" in check.errors
    if mode in CONTROLNET_MODES:
        configured = getattr(django_settings, "ENGINE_CONTROLNETS", None) or {}
        if mode not in configured:
            label = TemplateVersion.ReferenceMode(mode).label
            check.fail(
                "reference_mode",
                f"“{label}” needs a ControlNet model for {mode}, which this platform has not set up: use "
                "“Composition (img2img)” or no reference.",
            )
    if mode and not has_image:
        label = TemplateVersion.ReferenceMode(mode).label
        check.fail("reference_image", f"Add a reference image: “{label}” renders from one.")
    if not mode and (new_bytes is not None or kept):
        check.fail(
            "reference_mode",
            "Choose how the reference image is used (composition, pose or edges), or remove the image.",
        )
    return kept, new_bytes, mode


def clean_settings(*, data: Mapping[str, Any], current: TemplateVersion | None = None) -> RenderSettings:
    """Check render settings from a form or the API. Keys left out keep the current version's value (or the
    defaults, and the registry's default base model, for a new template); a key given empty means empty.
    `reference_image` is a new upload; `remove_reference_image` drops the current one. Raises SettingsInvalid
    naming every bad field with a message for people."""
    base = version_values(current) if current is not None else _defaults()
    base["reference_name"] = current.reference_image.name if current is not None else ""
    if current is None and "base_model" not in data:
        try:
            base["base_model"] = base_models.default_model().name
        except base_models.UnknownBaseModel:
            base["base_model"] = ""
    check = _Checker(data, base)
    prompt = _check_prompt(check)
    negative = str(check.raw("negative_prompt") or "").strip()
    if len(negative) > MAX_PROMPT_CHARS:
        check.fail("negative_prompt", f"The negative prompt is {len(negative)} characters: {MAX_PROMPT_CHARS} at most.")
    elif problem := prompts.length_problem(negative, negative=True):
        check.fail("negative_prompt", problem)
    spec = _check_base_model(check)
    lora = _check_style_lora(check, spec)
    style_weight = check.number("style_weight", "style LoRA weight", 0, 2)
    kept, new_reference, mode = _check_reference(check)
    strength = check.number("strength", "reference strength", 0.05, 1)
    scheduler = str(check.raw("scheduler") or "").strip()
    if scheduler not in SCHEDULERS:
        labels = ", ".join(str(label) for label in TemplateVersion.Scheduler.labels)
        check.fail("scheduler", f"Choose a scheduler: {labels}.")
    steps = check.number("steps", "number of steps", 1, 100, whole=True)
    guidance = check.number("guidance", "guidance scale", 0, 30)
    width, height = _check_size(check)
    identity = check.number("identity_weight", "identity weight", 0, 2)
    images = check.number("images_per_run", "number of images per run", 1, 32, whole=True)
    price = _check_price(check)
    if check.errors:
        raise SettingsInvalid(check.errors)
    return RenderSettings(
        prompt=prompt,
        negative_prompt=negative,
        base_model=spec.name,
        style_lora=lora,
        style_weight=float(style_weight),
        reference_mode=mode,
        strength=float(strength),
        scheduler=scheduler,
        steps=int(steps),
        guidance=float(guidance),
        width=width,
        height=height,
        identity_weight=float(identity),
        images_per_run=int(images),
        price_per_image=price,  # type: ignore[arg-type]
        reference_name=kept,
        reference_upload=new_reference,
    )


def _settings(data: Mapping[str, Any] | RenderSettings, current: TemplateVersion | None) -> RenderSettings:
    return data if isinstance(data, RenderSettings) else clean_settings(data=data, current=current)


# --- Templates and versions -----------------------------------------------------------------------------------


def _check_meta(*, name: str | None, category: str | None) -> None:
    if name is not None:
        if not name.strip():
            raise TemplateError("Give the template a name.", field="name")
        if len(name.strip()) > MAX_NAME_CHARS:
            raise TemplateError(f"The name is at most {MAX_NAME_CHARS} characters.", field="name")
    if category is not None and category not in Category.values:
        labels = ", ".join(str(label) for label in Category.labels)
        raise TemplateError(f"Choose a category: {labels}.", field="category")


def _new_version(
    *, template: Template, render: RenderSettings, number: int, note: str, user: User | None
) -> TemplateVersion:
    version = TemplateVersion(
        template=template,
        number=number,
        prompt=render.prompt,
        negative_prompt=render.negative_prompt,
        base_model=render.base_model,
        style_lora=render.style_lora,
        style_weight=render.style_weight,
        reference_mode=render.reference_mode,
        strength=render.strength,
        scheduler=render.scheduler,
        steps=render.steps,
        guidance=render.guidance,
        width=render.width,
        height=render.height,
        identity_weight=render.identity_weight,
        images_per_run=render.images_per_run,
        price_per_image=render.price_per_image,
        note=(note or "").strip()[:MAX_NOTE_CHARS],
        created_by=user,
    )
    version.studio_id = require_studio_id()  # the file's path names the studio
    if render.reference_upload is not None:
        version.reference_image.save("reference.jpg", ContentFile(render.reference_upload), save=False)
    else:
        version.reference_image.name = render.reference_name or ""
    version.save()
    return version


def _set_cover(template: Template, cover: Any) -> None:
    """`cover`: an upload (checked, stored as a clean JPEG), or "" to remove the cover (the file stays: other
    templates made by duplicating this one may show it)."""
    if cover == "":
        template.cover_image.name = ""
        return
    data = clean_image(cover, min_side=COVER_MIN_SIDE, max_side=COVER_MAX_SIDE, what="cover image")
    template.cover_image.save("cover.jpg", ContentFile(data), save=False)


KEEP: Any = object()  # save_template(cover=KEEP): leave the cover as it is


@dataclass(frozen=True)
class Saved:
    template: Template
    version: TemplateVersion
    created: bool  # whether this save made a new version


def create_template(
    *,
    name: str,
    category: str = Category.CLASSIC,
    description: str = "",
    settings: Mapping[str, Any] | RenderSettings,
    cover: Any = None,
    starter_key: str = "",
    note: str = "",
    user: User | None = None,
) -> Template:
    """A new draft template with version 1. Raises SettingsInvalid / TemplateError (400) for bad input."""
    _check_meta(name=name, category=category)
    render = _settings(settings, None)
    user = _user(user)
    cover_bytes = None
    if cover is not None and cover != "":
        cover_bytes = clean_image(cover, min_side=COVER_MIN_SIDE, max_side=COVER_MAX_SIDE, what="cover image")
    with transaction.atomic():
        template = Template(
            name=name.strip(),
            description=(description or "").strip(),
            category=category,
            starter_key=starter_key,
            created_by=user,
        )
        template.studio_id = require_studio_id()
        if cover_bytes is not None:
            template.cover_image.save("cover.jpg", ContentFile(cover_bytes), save=False)
        template.save()
        version = _new_version(template=template, render=render, number=1, note=note or "First version", user=user)
        template.current_version = version
        template.save(update_fields=["current_version", "updated_at"])
    log.info("template_created", template_id=template.pk, version_id=version.pk)
    return template


def _locked(template: Template) -> Template:
    return Template.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=template.pk)


def _next_number(template: Template) -> int:
    top = TemplateVersion.objects.filter(template=template).aggregate(top=Max("number"))["top"]
    return (top or 0) + 1


def save_template(
    *,
    template: Template,
    name: str | None = None,
    description: str | None = None,
    category: str | None = None,
    cover: Any = KEEP,
    settings: Mapping[str, Any] | RenderSettings | None = None,
    note: str = "",
    user: User | None = None,
) -> Saved:
    """Change a template: name, description, category and cover in place; render settings as a NEW version,
    made only when they differ from the current version's (a version is never updated). Settings keys left
    out keep their current value. Returns the template, its current version and whether one was made."""
    _check_meta(name=name, category=category)
    user = _user(user)
    with transaction.atomic():
        locked = _locked(template)
        current = locked.current_version
        render = _settings(settings, current) if settings is not None else None
        changed: list[str] = []
        for attr, value in (("name", name), ("description", description), ("category", category)):
            if value is not None and getattr(locked, attr) != value.strip():
                setattr(locked, attr, value.strip())
                changed.append(attr)
        if cover is not KEEP and not (cover == "" and not locked.cover_image):
            _set_cover(locked, cover)
            changed.append("cover_image")
        created = False
        version = current
        if render is not None and (current is None or render.comparable() != _comparable_version(current)):
            version = _new_version(template=locked, render=render, number=_next_number(locked), note=note, user=user)
            locked.current_version = version
            changed.append("current_version")
            created = True
        if changed:
            locked.save(update_fields=[*changed, "updated_at"])
    assert version is not None
    if created:
        log.info("template_version_created", template_id=locked.pk, version=version.number)
    _refresh(template, locked)
    return Saved(template=template, version=version, created=created)


def _refresh(template: Template, source: Template) -> None:
    """Copy the saved state onto the caller's object (so it sees what was saved)."""
    for attr in ("name", "description", "category", "status", "cover_image", "current_version_id", "updated_at"):
        setattr(template, attr, getattr(source, attr))
    template.current_version = source.current_version


def restore_version(*, template: Template, version: TemplateVersion, user: User | None = None) -> TemplateVersion:
    """Make a new version with an old version's settings ("Restored from version N"). 409 when they are the
    current settings already, or no longer valid (a base model the operator disabled, say)."""
    if version.template_id != template.pk:
        raise TemplateError("That version belongs to another template.", status=404)
    with transaction.atomic():
        locked = _locked(template)
        current = locked.current_version
        if current is not None and _comparable_version(current) == _comparable_version(version):
            raise TemplateError(
                f"Version {version.number} has the same settings as the current version {current.number}: "
                "nothing to restore.",
                status=409,
            )
        data = version_values(version)
        try:
            render = clean_settings(data=data, current=version)
        except SettingsInvalid as exc:
            raise TemplateError(f"Version {version.number} can't be restored: {exc.message}", status=409) from None
        new = _new_version(
            template=locked,
            render=render,
            number=_next_number(locked),
            note=f"Restored from version {version.number}",
            user=_user(user),
        )
        locked.current_version = new
        locked.save(update_fields=["current_version", "updated_at"])
    _refresh(template, locked)
    log.info("template_version_restored", template_id=template.pk, source=version.number, version=new.number)
    return new


def runnable_problem(template: Template) -> str | None:
    """Why the template's current version can't be rendered now (None when it can): no version, a base model
    the operator no longer offers, a LoRA of the wrong family, a ControlNet no longer configured..."""
    current = template.current_version
    if current is None:
        return "This template has no settings yet: save it first."
    try:
        clean_settings(data=version_values(current), current=current)
    except SettingsInvalid as exc:
        return exc.message
    return None


def publish(*, template: Template, user: User | None = None) -> Template:
    """Make the template usable for clients. 409 when it is archived, or its current version can't be rendered
    (its base model must be enabled in the registry). Publishing a published template changes nothing."""
    with transaction.atomic():
        locked = _locked(template)
        if locked.status == Template.Status.ARCHIVED:
            raise TemplateError("This template is archived: unarchive it before publishing it.", status=409)
        if locked.status != Template.Status.PUBLISHED:
            problem = runnable_problem(locked)
            if problem is not None:
                raise TemplateError(f"This template can't be published: {problem}", status=409)
            locked.status = Template.Status.PUBLISHED
            locked.save(update_fields=["status", "updated_at"])
            log.info("template_published", template_id=locked.pk)
    _refresh(template, locked)
    return template


def unpublish(*, template: Template, user: User | None = None) -> Template:
    """Back to draft: staff can't use it for clients any more (past portraits keep their version)."""
    with transaction.atomic():
        locked = _locked(template)
        if locked.status == Template.Status.ARCHIVED:
            raise TemplateError("This template is archived, not published.", status=409)
        if locked.status == Template.Status.PUBLISHED:
            locked.status = Template.Status.DRAFT
            locked.save(update_fields=["status", "updated_at"])
            log.info("template_unpublished", template_id=locked.pk)
    _refresh(template, locked)
    return template


def archive(*, template: Template, user: User | None = None) -> Template:
    """Hide the template from the catalog: it can't be published or run until it is unarchived."""
    with transaction.atomic():
        locked = _locked(template)
        if locked.status != Template.Status.ARCHIVED:
            locked.status = Template.Status.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
            log.info("template_archived", template_id=locked.pk)
    _refresh(template, locked)
    return template


def unarchive(*, template: Template, user: User | None = None) -> Template:
    """Back from the archive as a draft (publish it again to use it)."""
    with transaction.atomic():
        locked = _locked(template)
        if locked.status != Template.Status.ARCHIVED:
            raise TemplateError("This template is not archived.", status=409)
        locked.status = Template.Status.DRAFT
        locked.save(update_fields=["status", "updated_at"])
    _refresh(template, locked)
    return template


def duplicate(*, template: Template, user: User | None = None) -> Template:
    """A draft copy ("Copy of …") whose version 1 has the current version's settings (and the same cover)."""
    user = _user(user)
    with transaction.atomic():
        source = _locked(template)
        current = source.current_version
        name = f"Copy of {source.name}"[:MAX_NAME_CHARS]
        copy = Template(
            name=name,
            description=source.description,
            category=source.category,
            starter_key=source.starter_key,
            created_by=user,
        )
        copy.cover_image.name = source.cover_image.name or ""
        copy.save()
        if current is not None:
            render = RenderSettings(
                **{k: v for k, v in version_values(current).items() if k != "style_lora"},
                style_lora=current.style_lora,
                reference_name=current.reference_image.name or "",
            )
            version = _new_version(
                template=copy,
                render=render,
                number=1,
                note=f"Copied from “{source.name}” version {current.number}",
                user=user,
            )
            copy.current_version = version
            copy.save(update_fields=["current_version", "updated_at"])
    log.info("template_duplicated", template_id=template.pk, copy_id=copy.pk)
    return copy


def copy_starter(*, key: str, user: User | None = None) -> Template:
    """Copy a built-in starter template into the studio's catalog as a draft, on the registry's default base
    model. 404 for an unknown key; 409 when the platform offers no base model."""
    starter = get_starter(str(key or ""))
    if starter is None:
        raise TemplateError(f"There is no starter template called “{key}”.", status=404, field="key")
    try:
        model = base_models.default_model()
    except base_models.UnknownBaseModel as exc:
        raise TemplateError(exc.message, status=409) from None
    return create_template(
        name=starter.name,
        category=starter.category,
        description=starter.description,
        settings={**starter.settings(), "base_model": model.name},
        starter_key=starter.key,
        note="Copied from the starter catalog",
        user=user,
    )


# --- Style LoRAs ----------------------------------------------------------------------------------------------


def upload_style_lora(*, upload: Any, name: str = "", base_model: str = "", user: User | None = None) -> StyleLora:
    """Check an uploaded style LoRA (lora_files.check_style_lora: safetensors only, header, LoRA keys, shapes
    of `base_model`, default the registry's default) and store it. 400 with the specific reason for a bad file,
    409 when the studio already has the same file; nothing is stored then."""
    if upload is None:
        raise TemplateError("Choose the LoRA's .safetensors file to upload.", field="file")
    try:
        spec = base_models.get_model(base_model) if base_model else base_models.default_model()
    except base_models.UnknownBaseModel as exc:
        raise TemplateError(exc.message, field="base_model") from None
    filename = str(getattr(upload, "name", "") or "")
    try:
        info = lora_files.check_style_lora(upload, target=lora_files.target_for(spec), filename=filename)
    except lora_files.LoraRejected as exc:
        raise TemplateError(exc.message, field="file") from None
    label = (name or "").strip() or _name_from_file(filename) or "Style LoRA"
    if len(label) > (StyleLora._meta.get_field("name").max_length or 120):
        raise TemplateError("The name is at most 120 characters.", field="name")
    existing = StyleLora.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        raise TemplateError(f"This file is already in your style LoRAs as “{existing.name}”.", status=409, field="file")
    with transaction.atomic():
        lora = StyleLora(
            name=label,
            family=info.family,
            base_model=spec.name,
            cross_attention_dim=info.cross_attention_dim,
            sha256=info.sha256,
            size=info.size,
            rank=info.rank,
            tensors=info.tensors,
            created_by=_user(user),
        )
        lora.studio_id = require_studio_id()
        upload.seek(0)
        content = upload if isinstance(upload, File) else File(upload, name="style.safetensors")
        lora.file.save("style.safetensors", content, save=False)
        lora.save()
    log.info("style_lora_uploaded", lora_id=lora.pk, family=info.family, bytes=info.size, rank=info.rank)
    return lora


def _name_from_file(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return re.sub(r"[_\s]+", " ", stem).strip()[:120]


def delete_style_lora(*, lora: StyleLora) -> None:
    """Delete a style LoRA and its file; 409 while a template version uses it (versions never change)."""
    with transaction.atomic():
        used = (
            TemplateVersion.objects.filter(style_lora=lora)
            .select_related("template")
            .order_by("template__name", "number")
            .first()
        )
        if used is not None:
            raise TemplateError(
                f"“{lora.name}” is used by “{used.template.name}” version {used.number}: versions never change, "
                "so it can't be deleted.",
                status=409,
            )
        name = lora.file.name
        storage = lora.file.storage
        lora.delete()
        if name:
            transaction.on_commit(lambda: storage.delete(name))
    log.info("style_lora_deleted", lora_name=lora.name)
