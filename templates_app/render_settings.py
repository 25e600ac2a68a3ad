"""Render settings: the one check of a template version's settings (`clean_settings`), shared by the designer
form, the API serializers and the version actions, so every message is the same wherever a value is typed.

The render settings (prompt, base model, style LoRA, reference image or template photo, scheduler, steps,
guidance, size, identity weight, the finishing stages: face pass, print size, face mask; images per run, price)
are declared once, in RENDER_FIELDS; `clean_settings` checks every one of them
and raises :class:`SettingsInvalid` naming every bad field, or returns :class:`RenderSettings`, ready to become
a version (templates_app/versions.py). A new reference image is cleaned here (templates_app/images.py).

The template photo mode ("photo"): the reference image is a real photo by the photographer whose face region is
regenerated with the client's identity (inpainting through the soft face mask, engine/masks.py); it must show
at least one face that engine.faces finds, large enough (templates_app/template_photos.py). The photo is checked
when it is new, or when a version switches to the photo mode with the image it kept (a photo version's photo was
checked when it was saved, and versions never change).

The pose mode ("pose"): the reference image is an OpenPose skeleton, taken as it is, or a photo of a person whose
skeleton the engine takes; a photo where engine.pose finds no person is refused on `reference_image` with its
message (templates_app/pose_references.py), checked when new or when a version switches to the pose mode, as the
template photo is. Nothing here imports torch (mediapipe is imported by engine.pose on the first detection).

Group templates (issue 17, engine/group.py): `subject_slots` 2-6 people in the picture. The prompt names every one
of them, ``{subject_1}`` ... ``{subject_<n>}``, at least once and no slot beyond n, and never the single ``{subject}``;
a single-person template (1) keeps ``{subject}`` and names no slot. `slot_boxes` optionally says where each person
is (one [left, top, right, bottom] box per slot, fractions of the picture, no two the same; kept to 4 decimals),
so the engine gives each slot the nearest face; empty: left to right. A template photo with several people is
accepted (its faces are the slots; the boxes say which face is which person).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings as django_settings
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext
from django.utils.translation import gettext as _

from engine import prompts
from engine.group import MAX_SUBJECTS, MIN_SUBJECTS
from templates_app import base_models, lora_files, pose_references, template_photos
from templates_app.errors import SettingsInvalid, TemplateError
from templates_app.images import clean_image
from templates_app.models import StyleLora, TemplateVersion

SUBJECT = "{subject}"
# A group template's placeholders: {subject_1} ... {subject_<n>} (no leading zero).
SLOT_PLACEHOLDER = re.compile(r"\{subject_([1-9][0-9]*)\}")
BOX_SIDES = ("left", "top", "right", "bottom")
BOX_DECIMALS = 4
MAX_PROMPT_CHARS = 1000
SCHEDULERS = tuple(TemplateVersion.Scheduler.values)
REFERENCE_MODES = tuple(TemplateVersion.ReferenceMode.values)
CONTROLNET_MODES = ("pose", "canny")
SIZE_STEP = 64
MIN_SIDE, MAX_SIDE = 256, 2048
MAX_PRICE = Decimal("999999.99")
REFERENCE_MIN_SIDE = 256
REFERENCE_MAX_SIDE = 2048
PHOTO_MODE = "photo"
POSE_MODE = "pose"
# A template photo is kept larger than a reference image (it is the portrait itself, up to the print size) and
# must show a face large enough to be regenerated.
PHOTO_MIN_SIDE = 512
PHOTO_MAX_SIDE = 4096
LONG_SIDE_MIN, LONG_SIDE_MAX = 512, 8192

# The render settings a version holds, in the order pages show them.
RENDER_FIELDS = (
    "prompt",
    "negative_prompt",
    "subject_slots",
    "slot_boxes",
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
    "face_pass",
    "face_denoise",
    "face_identity_weight",
    "long_side",
    "upscale_denoise",
    "mask_margin",
    "mask_feather",
    "images_per_run",
    "price_per_image",
)
# The same as plain values (version_values, new versions, the admin's columns): the reference image is a file.
VALUE_FIELDS = tuple(name for name in RENDER_FIELDS if name != "reference_image")
# What clean_settings reads (the form's and the API's settings inputs): every render setting, and the flag that
# drops the current reference image.
INPUT_FIELDS = (*RENDER_FIELDS, "remove_reference_image")


@dataclass(frozen=True)
class RenderSettings:
    """Checked render settings, ready to become a version. `reference_name` is a stored reference image kept
    from the current version; `reference_upload` the clean JPEG bytes of a new one."""

    prompt: str
    negative_prompt: str
    subject_slots: int
    slot_boxes: list[list[float]]
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
    face_pass: bool
    face_denoise: float
    face_identity_weight: float
    long_side: int
    upscale_denoise: float
    mask_margin: float
    mask_feather: float
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
    values = {name: getattr(version, "style_lora_id" if name == "style_lora" else name) for name in VALUE_FIELDS}
    values["slot_boxes"] = [[float(side) for side in box] for box in version.slot_boxes or []]
    return values


def comparable_version(version: TemplateVersion) -> dict[str, Any]:
    values = version_values(version)
    values["reference_name"] = version.reference_image.name or ""
    values["price_per_image"] = Decimal(version.price_per_image)
    return values


def _defaults() -> dict[str, Any]:
    """A new template's starting values: the model's defaults, and no prompt, base model, style LoRA or size."""
    values = {name: TemplateVersion._meta.get_field(name).get_default() for name in VALUE_FIELDS}
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
            self.fail(name, _("Enter the %(label)s.") % {"label": _(label)})
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
            if whole:
                self.fail(name, _("The %(label)s must be a whole number.") % {"label": _(label)})
            else:
                self.fail(name, _("The %(label)s must be a number.") % {"label": _(label)})
            return None
        if not low <= number <= high:
            self.fail(
                name,
                _("The %(label)s must be between %(low)s and %(high)s.")
                % {"label": _(label), "low": f"{low:g}", "high": f"{high:g}"},
            )
            return None
        return number


_PLACEHOLDER = re.compile(r"\{[^{}]*\}|\[\s*subject\s*\]|<\s*subject\s*>", re.IGNORECASE)


def _slot_names(slots: int) -> str:
    """ "{subject_1} and {subject_2}", "{subject_1} … {subject_4}"."""
    return _("{subject_1} and {subject_2}") if slots == 2 else f"{{subject_1}} … {{subject_{slots}}}"


def _every_slot(slots: int) -> str:
    """ "{subject_1}, {subject_2} and {subject_3}"."""
    names = [f"{{subject_{n}}}" for n in range(1, slots + 1)]
    return _("%(first)s and %(last)s") % {"first": ", ".join(names[:-1]), "last": names[-1]}


def _check_prompt(check: _Checker, slots: int | None) -> str:
    """The prompt: its length, and its placeholders for `slots` people (None: the number of people is itself
    refused, so only the spelling of the placeholders is checked)."""
    prompt = str(check.raw("prompt") or "").strip()
    group = slots is not None and slots >= MIN_SUBJECTS
    if not prompt:
        if group:
            message = _("Write a prompt: it describes the portrait, with %(names)s where the people go.") % {
                "names": _slot_names(slots)  # type: ignore[arg-type]
            }
        else:
            message = _("Write a prompt: it describes the portrait, with {subject} where the client goes.")
        check.fail("prompt", message)
        return prompt
    if len(prompt) > MAX_PROMPT_CHARS:
        check.fail(
            "prompt",
            _("The prompt is %(length)s characters long: %(max)s at most.")
            % {"length": len(prompt), "max": MAX_PROMPT_CHARS},
        )
    elif problem := prompts.length_problem(SLOT_PLACEHOLDER.sub(SUBJECT, prompt)):  # each person counted as one
        check.fail("prompt", problem)
    named = sorted({int(n) for n in SLOT_PLACEHOLDER.findall(prompt)})
    wrong = [
        m.group(0)
        for m in _PLACEHOLDER.finditer(prompt)
        if m.group(0) != SUBJECT and not SLOT_PLACEHOLDER.fullmatch(m.group(0))
    ]
    if wrong:
        if group:
            message = _(
                "Write each person's placeholder exactly as %(names)s (lower case, in curly braces, no spaces): "
                "%(wrong)s would appear in the prompt as written."
            ) % {"names": _slot_names(slots), "wrong": wrong[0]}  # type: ignore[arg-type]
        else:
            message = _(
                "Write the placeholder exactly as %(subject)s (lower case, in curly braces, no spaces): %(wrong)s "
                "would appear in the prompt as written."
            ) % {"subject": SUBJECT, "wrong": wrong[0]}
        check.fail("prompt", message)
        return prompt
    if slots is None:
        return prompt
    if not group:
        if named:
            check.fail(
                "prompt",
                _(
                    "%(name)s is for group templates: a template for one person writes %(subject)s where the client "
                    "goes (or set “People in the picture” to the number of people)."
                )
                % {"name": f"{{subject_{named[0]}}}", "subject": SUBJECT},
            )
        elif SUBJECT not in prompt:
            check.fail(
                "prompt",
                _(
                    "Put %(subject)s in the prompt where the client should appear (e.g. “studio portrait of "
                    "%(subject)s”): it is replaced by the client's trigger phrase when the portraits are rendered."
                )
                % {"subject": SUBJECT},
            )
        return prompt
    if SUBJECT in prompt:
        check.fail(
            "prompt",
            _(
                "A group template names each person: write %(names)s instead of %(subject)s (each becomes that "
                "person's trigger phrase)."
            )
            % {"names": _slot_names(slots), "subject": SUBJECT},
        )
    beyond = [n for n in named if n > slots]
    if beyond:
        check.fail(
            "prompt",
            _("The prompt names %(name)s but the template has %(slots)s people: use %(names)s.")
            % {"name": f"{{subject_{beyond[0]}}}", "slots": slots, "names": _slot_names(slots)},
        )
    missing = [n for n in range(1, slots + 1) if n not in named]
    if missing:
        names = ", ".join(f"{{subject_{n}}}" for n in missing)
        check.fail(
            "prompt",
            _(
                "Put %(names)s in the prompt: each of the %(slots)s people appears in it at least once (e.g. "
                "“portrait of %(every)s side by side”)."
            )
            % {"names": names, "slots": slots, "every": _every_slot(slots)},
        )
    return prompt


def _check_slots(check: _Checker) -> int | None:
    return check.number("subject_slots", gettext_noop("number of people in the picture"), 1, MAX_SUBJECTS, whole=True)


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str | Decimal) else float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _check_slot_boxes(check: _Checker, slots: int | None) -> list[list[float]]:
    """One [left, top, right, bottom] box per person of a group (fractions of the picture), or none."""
    value = check.raw("slot_boxes")
    if _empty(value) or value == []:
        return []
    example = "[[0, 0, 0.5, 1], [0.5, 0, 1, 1]]"
    if not isinstance(value, list | tuple):
        check.fail(
            "slot_boxes",
            _(
                "Give the slot boxes as a list with one [left, top, right, bottom] box per person, fractions of the "
                "picture (e.g. %(example)s for two people side by side), or an empty list."
            )
            % {"example": example},
        )
        return []
    if slots is None:
        return []
    if slots < MIN_SUBJECTS:
        check.fail(
            "slot_boxes",
            _("Slot boxes are for group templates (2 or more people in the picture): leave them empty for one person."),
        )
        return []
    if len(value) != slots:
        check.fail(
            "slot_boxes",
            ngettext(
                "There is %(count)s slot box for %(slots)s people: give one box per person (%(slots)s), or none (the "
                "faces then go to the people left to right).",
                "There are %(count)s slot boxes for %(slots)s people: give one box per person (%(slots)s), or none "
                "(the faces then go to the people left to right).",
                len(value),
            )
            % {"count": len(value), "slots": slots},
        )
        return []
    boxes: list[list[float]] = []
    for slot, box in enumerate(value, start=1):
        numbers = [_number_or_none(side) for side in box] if isinstance(box, list | tuple) else []
        if len(numbers) != len(BOX_SIDES) or any(n is None for n in numbers):
            check.fail(
                "slot_boxes",
                _(
                    "Person %(slot)s's box must be four numbers: left, top, right, bottom, as fractions of the "
                    "picture (0 to 1)."
                )
                % {"slot": slot},
            )
            continue
        left, top, right, bottom = (round(float(n), BOX_DECIMALS) for n in numbers)  # type: ignore[arg-type]
        if not all(0 <= n <= 1 for n in (left, top, right, bottom)):
            check.fail(
                "slot_boxes",
                _(
                    "Person %(slot)s's box must lie inside the picture: each side between 0 and 1 (the left or top "
                    "edge to the right or bottom edge)."
                )
                % {"slot": slot},
            )
        elif left >= right:
            check.fail(
                "slot_boxes",
                _("Person %(slot)s's box: its left side must be to the left of its right side.") % {"slot": slot},
            )
        elif top >= bottom:
            check.fail("slot_boxes", _("Person %(slot)s's box: its top must be above its bottom.") % {"slot": slot})
        boxes.append([left, top, right, bottom])
    if len(boxes) == len(value):
        for first in range(len(boxes)):
            same = [n + 1 for n in range(first + 1, len(boxes)) if boxes[n] == boxes[first]]
            if same:
                check.fail(
                    "slot_boxes",
                    _(
                        "Person %(first)s's and person %(second)s's boxes are the same: give each person their own "
                        "place in the picture."
                    )
                    % {"first": first + 1, "second": same[0]},
                )
                break
    return boxes


def _check_base_model(check: _Checker) -> Any:
    name = str(check.raw("base_model") or "").strip()
    if not name:
        check.fail("base_model", _("Choose a base model."))
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
        check.fail("style_lora", _("Choose one of your studio's style LoRAs (or none)."))
        return None
    if spec is not None:
        target_label = lora_files.FAMILY_LABELS.get(spec.family, spec.family)
        if lora.family != spec.family:
            found = lora_files.FAMILY_LABELS.get(lora.family, lora.family)
            check.fail(
                "style_lora",
                _(
                    "This style LoRA was made for %(found)s; the template uses an %(family)s model (%(model)s). "
                    "Choose a matching LoRA or base model."
                )
                % {"found": found, "family": target_label, "model": spec.display_name},
            )
        elif lora.cross_attention_dim:
            width = lora_files.target_for(spec).cross_attention_dim
            if width != lora.cross_attention_dim:
                check.fail(
                    "style_lora",
                    _(
                        "This style LoRA's layers take %(features)s features (it was checked against %(checked)s); "
                        "%(model)s expects %(width)s. Upload it again for this base model."
                    )
                    % {
                        "features": lora.cross_attention_dim,
                        "checked": lora.base_model or _("another model"),
                        "model": spec.display_name,
                        "width": width,
                    },
                )
    return lora


_SIZE_NOT_WHOLE = {
    "width": gettext_lazy("The width must be a whole number of pixels (or empty for the model's own size)."),
    "height": gettext_lazy("The height must be a whole number of pixels (or empty for the model's own size)."),
}
_SIZE_RANGE = {
    "width": gettext_noop("The width must be a multiple of %(step)s between %(min)s and %(max)s pixels."),
    "height": gettext_noop("The height must be a multiple of %(step)s between %(min)s and %(max)s pixels."),
}


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
            check.fail(name, str(_SIZE_NOT_WHOLE[name]))
            sides[name] = None
            continue
        if not MIN_SIDE <= number <= MAX_SIDE or number % SIZE_STEP:
            check.fail(name, gettext(_SIZE_RANGE[name]) % {"step": SIZE_STEP, "min": MIN_SIDE, "max": MAX_SIDE})
            sides[name] = None
            continue
        sides[name] = number
    given = [name for name in ("width", "height") if not _empty(check.raw(name))]
    if len(given) == 1:
        missing = "height" if given == ["width"] else "width"
        check.fail(missing, _("Give both the width and the height, or neither (the base model's own size)."))
    return sides["width"], sides["height"]


def _check_price(check: _Checker) -> Decimal | None:
    value = check.raw("price_per_image")
    if _empty(value):
        check.fail("price_per_image", _("Enter the price per image (0 for none)."))
        return None
    try:
        if isinstance(value, bool | float):
            value = repr(value) if isinstance(value, float) else "x"
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        check.fail("price_per_image", _("The price per image must be an amount like 12.50."))
        return None
    if not price.is_finite():
        check.fail("price_per_image", _("The price per image must be an amount like 12.50."))
        return None
    if price < 0:
        check.fail("price_per_image", _("The price per image can't be negative."))
        return None
    if price > MAX_PRICE:
        check.fail("price_per_image", _("The price per image is at most %(max)s.") % {"max": MAX_PRICE})
        return None
    if price != price.quantize(Decimal("0.01")):
        check.fail("price_per_image", _("The price per image has at most 2 decimals."))
        return None
    return price.quantize(Decimal("0.01"))


def _check_reference(check: _Checker) -> tuple[str, bytes | None, str]:
    """(kept file name, new clean JPEG bytes, mode)."""
    upload = check.data.get("reference_image")
    remove = check.data.get("remove_reference_image") in (True, "on", "true", "1", 1)
    kept = "" if remove else str(check.base.get("reference_name") or "")
    mode = str(check.raw("reference_mode") or "").strip()
    photo = mode == PHOTO_MODE
    new_bytes = None
    if isinstance(upload, str) and upload.strip():
        check.fail("reference_image", _("Send the reference image as a file (a multipart upload), not as text."))
    elif upload is not None and not isinstance(upload, str) and not _empty(upload):
        try:
            new_bytes = clean_image(
                upload,
                min_side=PHOTO_MIN_SIDE if photo else REFERENCE_MIN_SIDE,
                max_side=PHOTO_MAX_SIDE if photo else REFERENCE_MAX_SIDE,
                what="template photo" if photo else "reference image",
            )
        except TemplateError as exc:
            check.fail("reference_image", exc.message)
    if mode not in REFERENCE_MODES:
        check.fail(
            "reference_mode",
            _("Choose how the reference image is used: composition, pose, edges or template photo (or none)."),
        )
        return kept, new_bytes, ""
    has_image = new_bytes is not None or bool(kept) or "reference_image" in check.errors
    if mode in CONTROLNET_MODES:
        configured = getattr(django_settings, "ENGINE_CONTROLNETS", None) or {}
        if mode not in configured:
            label = TemplateVersion.ReferenceMode(mode).label
            check.fail(
                "reference_mode",
                _(
                    "“%(label)s” needs a ControlNet model for %(mode)s, which this platform has not set up: use "
                    "“Composition (img2img)” or no reference."
                )
                % {"label": label, "mode": mode},
            )
    if mode and not has_image:
        if photo:
            check.fail("reference_image", _("Add the template photo: the client's face is put into it."))
        else:
            label = TemplateVersion.ReferenceMode(mode).label
            check.fail("reference_image", _("Add a reference image: “%(label)s” renders from one.") % {"label": label})
    if not mode and (new_bytes is not None or kept):
        check.fail(
            "reference_mode",
            _(
                "Choose how the reference image is used (composition, pose, edges or template photo), or remove the "
                "image."
            ),
        )
    if photo and "reference_image" not in check.errors:
        _check_photo_faces(check, new_bytes, kept)
    if mode == POSE_MODE and not {"reference_image", "reference_mode"} & check.errors.keys():
        _check_pose(check, new_bytes, kept)
    return kept, new_bytes, mode


def _check_photo_faces(check: _Checker, new_bytes: bytes | None, kept: str) -> None:
    """A template photo must show a face: a new one always, a kept image when the version switches to the photo
    mode (a photo version's photo was checked when it was saved)."""
    try:
        if new_bytes is not None:
            boxes = template_photos.face_boxes(template_photos.image_from_bytes(new_bytes))
        elif kept and check.base.get("reference_mode") != PHOTO_MODE:
            boxes = template_photos.stored_face_boxes(kept)
        else:
            return
    except OSError:
        check.fail("reference_image", _("The stored reference image can't be read: upload the template photo again."))
        return
    if not boxes:
        check.fail("reference_image", str(template_photos.NO_FACE_MESSAGE))


def _check_pose(check: _Checker, new_bytes: bytes | None, kept: str) -> None:
    """A pose reference must be an OpenPose skeleton or show a person engine.pose finds: a new image always, a
    kept image when the version switches to the pose mode (a pose version's image was checked when it was saved).
    Not run while the mode itself is refused (no pose ControlNet on this platform)."""
    try:
        if new_bytes is not None:
            found = pose_references.pose_reference(template_photos.image_from_bytes(new_bytes))
        elif kept and check.base.get("reference_mode") != POSE_MODE:
            found = pose_references.stored_pose(kept)
        else:
            return
    except OSError:
        check.fail("reference_image", str(pose_references.UNREADABLE_MESSAGE))
        return
    if not found.found:
        check.fail("reference_image", found.problem)


def _check_face_pass(check: _Checker) -> bool | None:
    value = check.raw("face_pass")
    if isinstance(value, bool):
        return value
    if value in (1, 0) and isinstance(value, int):
        return bool(value)
    text = str(value if value is not None else "").strip().lower()
    if text in ("true", "on", "1", "yes"):
        return True
    if text in ("false", "off", "0", "no", ""):
        return False
    check.fail("face_pass", _("Say whether the face pass runs: true or false."))
    return None


def _check_long_side(check: _Checker) -> int | None:
    value = check.raw("long_side")
    message = _(
        "The print long side must be 0 (the render's own size) or a whole number of pixels between %(min)s and %(max)s."
    ) % {"min": LONG_SIDE_MIN, "max": LONG_SIDE_MAX}
    if _empty(value):
        check.fail(
            "long_side",
            _("Enter the print long side: %(min)s-%(max)s px, or 0 for none.")
            % {"min": LONG_SIDE_MIN, "max": LONG_SIDE_MAX},
        )
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        check.fail("long_side", message)
        return None
    if number != 0 and not LONG_SIDE_MIN <= number <= LONG_SIDE_MAX:
        check.fail("long_side", message)
        return None
    return number


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
    slots = _check_slots(check)
    prompt = _check_prompt(check, slots)
    boxes = _check_slot_boxes(check, slots)
    negative = str(check.raw("negative_prompt") or "").strip()
    if len(negative) > MAX_PROMPT_CHARS:
        check.fail(
            "negative_prompt",
            _("The negative prompt is %(length)s characters: %(max)s at most.")
            % {"length": len(negative), "max": MAX_PROMPT_CHARS},
        )
    elif problem := prompts.length_problem(negative, negative=True):
        check.fail("negative_prompt", problem)
    spec = _check_base_model(check)
    lora = _check_style_lora(check, spec)
    style_weight = check.number("style_weight", gettext_noop("style LoRA weight"), 0, 2)
    kept, new_reference, mode = _check_reference(check)
    strength = check.number("strength", gettext_noop("reference strength"), 0.05, 1)
    scheduler = str(check.raw("scheduler") or "").strip()
    if scheduler not in SCHEDULERS:
        labels = ", ".join(str(label) for label in TemplateVersion.Scheduler.labels)
        check.fail("scheduler", _("Choose a scheduler: %(labels)s.") % {"labels": labels})
    steps = check.number("steps", gettext_noop("number of steps"), 1, 100, whole=True)
    guidance = check.number("guidance", gettext_noop("guidance scale"), 0, 30)
    width, height = _check_size(check)
    identity = check.number("identity_weight", gettext_noop("identity weight"), 0, 2)
    face_pass = _check_face_pass(check)
    face_denoise = check.number("face_denoise", gettext_noop("face pass denoise"), 0.05, 1)
    face_identity = check.number("face_identity_weight", gettext_noop("face pass identity weight"), 0, 2)
    long_side = _check_long_side(check)
    upscale_denoise = check.number("upscale_denoise", gettext_noop("upscale denoise"), 0, 0.6)
    mask_margin = check.number("mask_margin", gettext_noop("face mask margin"), 0, 1)
    mask_feather = check.number("mask_feather", gettext_noop("face mask feather"), 0, 1)
    images = check.number("images_per_run", gettext_noop("number of images per run"), 1, 32, whole=True)
    price = _check_price(check)
    if check.errors:
        raise SettingsInvalid(check.errors)
    return RenderSettings(
        prompt=prompt,
        negative_prompt=negative,
        subject_slots=int(slots),  # type: ignore[arg-type]
        slot_boxes=boxes,
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
        face_pass=bool(face_pass),
        face_denoise=float(face_denoise),
        face_identity_weight=float(face_identity),
        long_side=int(long_side),  # type: ignore[arg-type]
        upscale_denoise=float(upscale_denoise),
        mask_margin=float(mask_margin),
        mask_feather=float(mask_feather),
        images_per_run=int(images),
        price_per_image=price,  # type: ignore[arg-type]
        reference_name=kept,
        reference_upload=new_reference,
    )
