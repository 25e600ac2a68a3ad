"""Forms of the template pages. They carry the input; the checks of render settings are
templates_app.render_settings.clean_settings (shared with the API), so every message is the same wherever it is
typed."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from engine import prompts
from templates_app import base_models, render_settings, versions
from templates_app.errors import SettingsInvalid
from templates_app.models import Category, StyleLora, Template, TemplateVersion

IDENTITY_HELP = gettext_lazy(
    "Lower: the style leads, flattering. Higher: the client's face leads, exact likeness. 1 is balanced."
)
MASK_HELP = gettext_lazy(
    "The face mask: the only region the face pass and a template photo change. Each detected face is grown by the "
    "margin (a fraction of the face's size: 0.3 takes in forehead, hair and chin) and fades out over the feather "
    "(0 is a hard edge); every pixel outside stays exactly as it was."
)


SLOTS_HELP = gettext_lazy(
    "2–6 makes a group template: write {subject_1} … in the prompt, one per person (1: a single portrait)."
)
SLOT_BOXES_HELP = gettext_lazy(
    "Optional: where each person is, in % of the picture (left and right edges from the picture's left, top and "
    "bottom from its top). Each person is given the face nearest their box; without boxes, the faces go to the "
    "people left to right."
)
SIDE_LABELS = {
    "left": gettext_lazy("Left"),
    "top": gettext_lazy("Top"),
    "right": gettext_lazy("Right"),
    "bottom": gettext_lazy("Bottom"),
}
# The messages about one side of a person's box, per side (a whole sentence each, for the translations).
_SIDE_MISSING = {
    "left": gettext_noop(
        "Give the left of person %(slot)s's box, in %% of the picture (or leave every person's box empty)."
    ),
    "top": gettext_noop(
        "Give the top of person %(slot)s's box, in %% of the picture (or leave every person's box empty)."
    ),
    "right": gettext_noop(
        "Give the right of person %(slot)s's box, in %% of the picture (or leave every person's box empty)."
    ),
    "bottom": gettext_noop(
        "Give the bottom of person %(slot)s's box, in %% of the picture (or leave every person's box empty)."
    ),
}
_SIDE_INVALID = {
    "left": gettext_noop(
        "The left of person %(slot)s's box must be a percentage of the picture's width, from 0 to 100."
    ),
    "right": gettext_noop(
        "The right of person %(slot)s's box must be a percentage of the picture's width, from 0 to 100."
    ),
    "top": gettext_noop(
        "The top of person %(slot)s's box must be a percentage of the picture's height, from 0 to 100."
    ),
    "bottom": gettext_noop(
        "The bottom of person %(slot)s's box must be a percentage of the picture's height, from 0 to 100."
    ),
}


def _lazy_format(message: str, **values: Any) -> Any:
    """`message` (marked with gettext_noop) translated when shown, its %(name)s placeholders filled with `values`."""
    return lazy(lambda: gettext(message) % values, str)()


def slot_field(slot: int, side: str) -> str:
    """The designer's input of one side of one person's box, in % of the picture: `slot_2_left`."""
    return f"slot_{slot}_{side}"


def model_choices(current: str | None = None) -> list[tuple[str, str]]:
    """Enabled base models for a select (name → label · family); a disabled current model stays listed, marked,
    so the page shows what the version uses (saving it is refused with the registry's message)."""
    choices = []
    for spec in base_models.enabled_models():
        family = "SD 1.5" if spec.family == "sd15" else "SDXL"
        demo = " · " + gettext("demo model (noise)") if spec.is_demo else ""
        choices.append((spec.name, f"{spec.display_name} · {family}{demo}"))
    if current and current not in {name for name, _ in choices}:
        choices.append((current, gettext("%(model)s (no longer available)") % {"model": current}))
    return choices


def _number(attrs: dict[str, Any]) -> forms.NumberInput:
    return forms.NumberInput(attrs=attrs)


class TemplateListFilterForm(forms.Form):
    category = forms.ChoiceField(required=False, choices=[("", gettext_lazy("All categories")), *Category.choices])
    status = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Draft and published")), *Template.Status.choices]
    )


class TemplateForm(forms.Form):
    """The designer: the template's own fields and its render settings (a new version when they change)."""

    # The template itself
    name = forms.CharField(
        max_length=versions.MAX_NAME_CHARS,
        label=gettext_lazy("Name"),
        error_messages={"required": gettext_lazy("Give the template a name.")},
    )
    category = forms.ChoiceField(choices=Category.choices, initial=Category.CLASSIC, label=gettext_lazy("Category"))
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Description")
    )
    cover_image = forms.FileField(
        required=False,
        label=gettext_lazy("Cover image"),
        help_text=gettext_lazy("JPEG, PNG, WebP or HEIC; shown in the catalog."),
        error_messages={
            "empty": gettext_lazy("The cover image file is empty: upload a JPEG, PNG, WebP or HEIC image.")
        },
    )
    remove_cover_image = forms.BooleanField(required=False, label=gettext_lazy("Remove the cover image"))

    # Render settings: plain inputs, checked by render_settings.clean_settings
    prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": render_settings.MAX_PROMPT_CHARS}),
        label=gettext_lazy("Prompt"),
        help_text=_lazy_format(
            gettext_noop(
                "Write {subject} where the client goes: it becomes their trigger phrase (“ohwx woman”); in a group "
                "template, {subject_1}, {subject_2} … one per person. At most %(max)s tokens (CLIP's count: about "
                "one per word, digit or punctuation mark)."
            ),
            max=prompts.MAX_PROMPT_TOKENS,
        ),
    )
    negative_prompt = forms.CharField(
        required=False,
        label=gettext_lazy("Negative prompt"),
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": render_settings.MAX_PROMPT_CHARS}),
        help_text=_lazy_format(
            gettext_noop("What the portraits must not show (artefacts, styles to avoid). At most %(max)s tokens."),
            max=prompts.MAX_PROMPT_TOKENS,
        ),
    )
    subject_slots = forms.CharField(
        required=False,
        label=gettext_lazy("People in the picture"),
        widget=_number({"min": 1, "max": render_settings.MAX_SUBJECTS, "step": 1}),
        help_text=SLOTS_HELP,
    )
    # Only carries the messages about the boxes as a whole (their number, two the same); the boxes are the
    # per-person inputs slot_<n>_<side>, added in __init__.
    slot_boxes = forms.CharField(required=False, widget=forms.HiddenInput)
    base_model = forms.CharField(required=False, label=gettext_lazy("Base model"), widget=forms.Select())
    style_lora = forms.CharField(required=False, label=gettext_lazy("Style LoRA"), widget=forms.Select())
    style_weight = forms.CharField(
        required=False, label=gettext_lazy("Style LoRA weight"), widget=_number({"min": 0, "max": 2, "step": 0.05})
    )
    reference_image = forms.FileField(
        required=False,
        label=gettext_lazy("Reference image"),
        help_text=gettext_lazy(
            "Composition and pose to follow (JPEG, PNG, WebP or HEIC, at least 256 px); for a template "
            "photo, the photo itself (at least 512 px, with the model's face clearly visible)."
        ),
        error_messages={
            "empty": gettext_lazy("The reference image file is empty: upload a JPEG, PNG, WebP or HEIC image.")
        },
    )
    remove_reference_image = forms.BooleanField(required=False, label=gettext_lazy("Remove the reference image"))
    reference_mode = forms.CharField(
        required=False,
        label=gettext_lazy("Use the reference as"),
        widget=forms.Select(choices=TemplateVersion.ReferenceMode.choices),
    )
    strength = forms.CharField(
        required=False,
        label=gettext_lazy("Reference strength"),
        widget=_number({"min": 0.05, "max": 1, "step": 0.05}),
        help_text=gettext_lazy(
            "img2img: how far from the reference the portrait may go (0.05 close, 1 free). Template photo: how much "
            "of the face is regenerated with the client's likeness (0.75 is a good start)."
        ),
    )
    scheduler = forms.CharField(
        required=False, widget=forms.Select(choices=TemplateVersion.Scheduler.choices), label=gettext_lazy("Scheduler")
    )
    steps = forms.CharField(required=False, widget=_number({"min": 1, "max": 100}), label=gettext_lazy("Steps"))
    guidance = forms.CharField(
        required=False, widget=_number({"min": 0, "max": 30, "step": 0.5}), label=gettext_lazy("Guidance (CFG)")
    )
    width = forms.CharField(
        required=False,
        widget=_number({"min": 256, "max": 2048, "step": 64}),
        label=gettext_lazy("Width"),
        help_text=gettext_lazy(
            "Empty: the base model's own size. Multiples of 64, 256–2048. A template photo ignores it: the "
            "portraits take the photo's size (resized to the print long side)."
        ),
    )
    height = forms.CharField(
        required=False, widget=_number({"min": 256, "max": 2048, "step": 64}), label=gettext_lazy("Height")
    )
    identity_weight = forms.CharField(
        required=False,
        label=gettext_lazy("Identity weight"),
        widget=forms.NumberInput(attrs={"type": "range", "min": 0, "max": 2, "step": 0.05, "list": "identity-ticks"}),
        help_text=IDENTITY_HELP,
    )
    face_pass = forms.BooleanField(
        required=False,
        label=gettext_lazy("Face pass"),
        help_text=gettext_lazy(
            "Re-render each face at full resolution with the client's likeness (sharper eyes, skin and "
            "likeness in group and full-length shots)."
        ),
    )
    face_denoise = forms.CharField(
        required=False,
        label=gettext_lazy("Face pass denoise"),
        widget=_number({"min": 0.05, "max": 1, "step": 0.05}),
        help_text=gettext_lazy(
            "How much the face pass changes the face: 0.05 barely, 1 entirely. 0.4 keeps the expression."
        ),
    )
    face_identity_weight = forms.CharField(
        required=False,
        label=gettext_lazy("Face pass identity weight"),
        widget=_number({"min": 0, "max": 2, "step": 0.05}),
        help_text=gettext_lazy("The client's likeness in the face pass (0–2; 1 is the double as trained)."),
    )
    long_side = forms.CharField(
        required=False,
        label=gettext_lazy("Print long side (px)"),
        widget=_number({"min": 0, "max": render_settings.LONG_SIDE_MAX, "step": 1}),
        help_text=_lazy_format(
            gettext_noop(
                "The portraits' long side: 3000 px is about 25 cm at 300 dpi. %(min)s–%(max)s, or 0 for the render's "
                "own size."
            ),
            min=render_settings.LONG_SIDE_MIN,
            max=render_settings.LONG_SIDE_MAX,
        ),
    )
    upscale_denoise = forms.CharField(
        required=False,
        label=gettext_lazy("Upscale denoise"),
        widget=_number({"min": 0, "max": 0.6, "step": 0.05}),
        help_text=gettext_lazy("How much detail the tiled re-render adds when enlarging (0: enlarge only, up to 0.6)."),
    )
    mask_margin = forms.CharField(
        required=False, label=gettext_lazy("Face mask margin"), widget=_number({"min": 0, "max": 1, "step": 0.05})
    )
    mask_feather = forms.CharField(
        required=False, label=gettext_lazy("Face mask feather"), widget=_number({"min": 0, "max": 1, "step": 0.05})
    )
    images_per_run = forms.CharField(
        required=False, label=gettext_lazy("Images per run"), widget=_number({"min": 1, "max": 32})
    )
    price_per_image = forms.CharField(
        required=False, label=gettext_lazy("Price per image"), widget=_number({"min": 0, "step": "0.01"})
    )
    note = forms.CharField(
        required=False,
        max_length=versions.MAX_NOTE_CHARS,
        label=gettext_lazy("What changed"),
        help_text=gettext_lazy("Kept with the new version (optional)."),
    )

    SETTINGS_FIELDS = render_settings.INPUT_FIELDS
    mask_help = MASK_HELP
    slot_boxes_help = SLOT_BOXES_HELP

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        self.template = template
        self.current = template.current_version if template is not None else None
        if template is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_for(template)
        super().__init__(*args, **kwargs)
        current_model = self.current.base_model if self.current is not None else None
        self.fields["base_model"].widget.choices = model_choices(current_model)
        loras = [("", gettext("None"))] + [
            (str(lora.pk), str(lora)) for lora in StyleLora.objects.order_by("name", "id")
        ]
        self.fields["style_lora"].widget.choices = loras
        if self.current is None or not self.current.has_reference:
            self.fields.pop("remove_reference_image")
        if template is None or not template.cover_image:
            self.fields.pop("remove_cover_image")
        for slot in range(1, render_settings.MAX_SUBJECTS + 1):
            for side in render_settings.BOX_SIDES:
                self.fields[slot_field(slot, side)] = forms.CharField(
                    required=False,
                    label=f"{SIDE_LABELS[side]} (%)",
                    widget=_number({"min": 0, "max": 100, "step": "0.01", "inputmode": "decimal"}),
                )
        self.render_settings: render_settings.RenderSettings | None = None

    def slots_shown(self) -> int:
        """How many people the page shows boxes for: the typed number (bound), else the version's (1 when
        neither is a number from 1 to 6)."""
        raw = self["subject_slots"].value()
        try:
            slots = int(str(raw).strip())
        except (TypeError, ValueError):
            slots = self.current.subject_slots if self.current is not None else 1
        return slots if 1 <= slots <= render_settings.MAX_SUBJECTS else 1

    def slot_rows(self) -> list[dict[str, Any]]:
        """Each person's box inputs for the page: slot number, its four bound fields, whether it is hidden (beyond
        the number of people), and its box as CSS percentages (left, top, width, height) when all four are
        numbers in order, for the boxes drawn over the template photo."""
        shown = self.slots_shown()
        rows = []
        for slot in range(1, render_settings.MAX_SUBJECTS + 1):
            fields = [self[slot_field(slot, side)] for side in render_settings.BOX_SIDES]
            numbers = [_percent(field.value()) for field in fields]
            css = None
            if all(n is not None and 0 <= n <= 100 for n in numbers):
                left, top, right, bottom = numbers  # type: ignore[misc]
                if left < right and top < bottom:
                    css = {"l": f"{left:g}%", "t": f"{top:g}%", "w": f"{right - left:g}%", "h": f"{bottom - top:g}%"}
            rows.append({"slot": slot, "fields": fields, "hidden": shown < 2 or slot > shown, "css": css})
        return rows

    def _slot_boxes(self, data: dict[str, Any]) -> list[list[float]] | None:
        """The per-person inputs (%) as slot boxes (fractions) for clean_settings: [] when every box is empty (or
        for one person); None when none was sent (the boxes are kept, like any setting left out), or, with the
        messages on the inputs, when one is incomplete or not a percentage."""
        sent = any(
            slot_field(slot, side) in self.data
            for slot in range(1, render_settings.MAX_SUBJECTS + 1)
            for side in render_settings.BOX_SIDES
        )
        if not sent:
            return None
        try:
            slots = int(str(data.get("subject_slots") or "").strip())
        except ValueError:
            return None  # clean_settings says what is wrong with the number of people
        if not 2 <= slots <= render_settings.MAX_SUBJECTS:
            return []
        raw = {
            (slot, side): str(data.get(slot_field(slot, side)) or "").strip()
            for slot in range(1, slots + 1)
            for side in render_settings.BOX_SIDES
        }
        if not any(raw.values()):
            return []
        boxes: list[list[float]] | None = []
        for slot in range(1, slots + 1):
            box = []
            for side in render_settings.BOX_SIDES:
                name, text = slot_field(slot, side), raw[(slot, side)]
                number = _percent(text)
                if not text:
                    self.add_error(name, gettext(_SIDE_MISSING[side]) % {"slot": slot})
                elif number is None or not 0 <= number <= 100:
                    self.add_error(name, gettext(_SIDE_INVALID[side]) % {"slot": slot})
                else:
                    box.append(number / 100)
            if boxes is not None and len(box) == len(render_settings.BOX_SIDES):
                boxes.append(box)
            else:
                boxes = None
        return boxes

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        settings_data = {name: data.get(name) for name in self.SETTINGS_FIELDS if name in self.fields}
        if not settings_data.get("reference_image"):
            settings_data.pop("reference_image", None)
        if "subject_slots" not in self.data:
            settings_data.pop("subject_slots")  # left out (not the page's form): kept, like any setting
        boxes = self._slot_boxes(data)
        if boxes is None:
            settings_data.pop("slot_boxes")  # the inputs have their messages; the rest is still checked
        else:
            settings_data["slot_boxes"] = boxes
        try:
            self.render_settings = render_settings.clean_settings(data=settings_data, current=self.current)
        except SettingsInvalid as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return data


def _percent(value: Any) -> float | None:
    """A typed percentage as a number (None: empty or not a finite number)."""
    try:
        number = float(str(value if value is not None else "").strip().replace(",", "."))
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


# Float settings shown in number inputs: written like 0.4, not 0.4000000001 or 1.0.
_DECIMAL_INPUTS = (
    "style_weight",
    "strength",
    "guidance",
    "identity_weight",
    "face_denoise",
    "face_identity_weight",
    "upscale_denoise",
    "mask_margin",
    "mask_feather",
)


def _model_default(name: str) -> Any:
    value = TemplateVersion._meta.get_field(name).get_default()
    return f"{value:g}" if isinstance(value, float) else value


def initial_for(template: Template) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "name": template.name,
        "category": template.category,
        "description": template.description,
    }
    if template.current_version is not None:
        values = render_settings.version_values(template.current_version)
        values["style_lora"] = values["style_lora"] or ""
        values["width"] = values["width"] or ""
        values["height"] = values["height"] or ""
        for key in _DECIMAL_INPUTS:
            values[key] = f"{values[key]:g}"
        for slot, box in enumerate(values.pop("slot_boxes"), start=1):
            for side, fraction in zip(render_settings.BOX_SIDES, box, strict=False):
                values[slot_field(slot, side)] = f"{round(fraction * 100, 2):g}"
        initial.update(values)
    return initial


def new_template_initial() -> dict[str, Any]:
    initial: dict[str, Any] = {
        "category": Category.CLASSIC,
        "subject_slots": 1,
        "prompt": "studio portrait photograph of {subject}, soft key light, neutral backdrop, 85mm lens, "
        "natural skin texture",
        "negative_prompt": "cartoon, 3d render, plastic skin, airbrushed, deformed face, extra fingers, blurry, "
        "watermark, text",
        "scheduler": TemplateVersion.Scheduler.DPMPP_2M_KARRAS,
        "steps": 30,
        "guidance": "6",
        "identity_weight": "1",
        "images_per_run": 4,
        "price_per_image": "0.00",
        "style_weight": "0.8",
        "strength": "0.6",
        # The finishing stages: the model's defaults (face pass on, 3000 px print size, the engine's mask).
        **{
            name: _model_default(name)
            for name in (
                "face_pass",
                "face_denoise",
                "face_identity_weight",
                "long_side",
                "upscale_denoise",
                "mask_margin",
                "mask_feather",
            )
        },
    }
    with contextlib.suppress(base_models.UnknownBaseModel):
        initial["base_model"] = base_models.default_model().name
    return initial


class StyleLoraUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("LoRA file (.safetensors)"),
        error_messages={
            "required": gettext_lazy("Choose the LoRA's .safetensors file to upload."),
            "empty": gettext_lazy("The file is empty: upload the LoRA's .safetensors file."),
        },
        widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}),
    )
    name = forms.CharField(
        required=False, max_length=120, label=gettext_lazy("Name"), help_text=gettext_lazy("Empty: the file's name.")
    )
    base_model = forms.ChoiceField(
        label=gettext_lazy("Made for the base model"),
        help_text=gettext_lazy("Its layers are checked against this model's shapes."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = model_choices()
        with contextlib.suppress(base_models.UnknownBaseModel):
            self.fields["base_model"].initial = base_models.default_model().name


class StarterCopyForm(forms.Form):
    key = forms.CharField(max_length=60)
