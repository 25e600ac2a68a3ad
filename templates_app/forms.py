"""Forms of the template pages. They carry the input; the checks of render settings are
templates_app.render_settings.clean_settings (shared with the API), so every message is the same wherever it is
typed."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms

from engine import prompts
from templates_app import base_models, render_settings, versions
from templates_app.errors import SettingsInvalid
from templates_app.models import Category, StyleLora, Template, TemplateVersion

IDENTITY_HELP = "Lower: the style leads, flattering. Higher: the client's face leads, exact likeness. 1 is balanced."


def model_choices(current: str | None = None) -> list[tuple[str, str]]:
    """Enabled base models for a select (name → label · family); a disabled current model stays listed, marked,
    so the page shows what the version uses (saving it is refused with the registry's message)."""
    choices = []
    for spec in base_models.enabled_models():
        family = "SD 1.5" if spec.family == "sd15" else "SDXL"
        demo = " · demo model (noise)" if spec.is_demo else ""
        choices.append((spec.name, f"{spec.display_name} · {family}{demo}"))
    if current and current not in {name for name, _ in choices}:
        choices.append((current, f"{current} (no longer available)"))
    return choices


def _number(attrs: dict[str, Any]) -> forms.NumberInput:
    return forms.NumberInput(attrs=attrs)


class TemplateListFilterForm(forms.Form):
    category = forms.ChoiceField(required=False, choices=[("", "All categories"), *Category.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Draft and published"), *Template.Status.choices])


class TemplateForm(forms.Form):
    """The designer: the template's own fields and its render settings (a new version when they change)."""

    # The template itself
    name = forms.CharField(max_length=versions.MAX_NAME_CHARS, error_messages={"required": "Give the template a name."})
    category = forms.ChoiceField(choices=Category.choices, initial=Category.CLASSIC)
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    cover_image = forms.FileField(
        required=False,
        label="Cover image",
        help_text="JPEG, PNG, WebP or HEIC; shown in the catalog.",
        error_messages={"empty": "The cover image file is empty: upload a JPEG, PNG, WebP or HEIC image."},
    )
    remove_cover_image = forms.BooleanField(required=False, label="Remove the cover image")

    # Render settings: plain inputs, checked by render_settings.clean_settings
    prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": render_settings.MAX_PROMPT_CHARS}),
        help_text="Write {subject} where the client goes: it becomes their trigger phrase (“ohwx woman”). At most "
        f"{prompts.MAX_PROMPT_TOKENS} tokens (CLIP's count: about one per word, digit or punctuation mark).",
    )
    negative_prompt = forms.CharField(
        required=False,
        label="Negative prompt",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": render_settings.MAX_PROMPT_CHARS}),
        help_text=f"What the portraits must not show (artefacts, styles to avoid). At most {prompts.MAX_PROMPT_TOKENS} "
        "tokens.",
    )
    base_model = forms.CharField(required=False, label="Base model", widget=forms.Select())
    style_lora = forms.CharField(required=False, label="Style LoRA", widget=forms.Select())
    style_weight = forms.CharField(
        required=False, label="Style LoRA weight", widget=_number({"min": 0, "max": 2, "step": 0.05})
    )
    reference_image = forms.FileField(
        required=False,
        label="Reference image",
        help_text="Composition and pose to follow (JPEG, PNG, WebP or HEIC, at least 256 px).",
        error_messages={"empty": "The reference image file is empty: upload a JPEG, PNG, WebP or HEIC image."},
    )
    remove_reference_image = forms.BooleanField(required=False, label="Remove the reference image")
    reference_mode = forms.CharField(
        required=False,
        label="Use the reference as",
        widget=forms.Select(choices=TemplateVersion.ReferenceMode.choices),
    )
    strength = forms.CharField(
        required=False,
        label="Reference strength",
        widget=_number({"min": 0.05, "max": 1, "step": 0.05}),
        help_text="img2img: how far from the reference the portrait may go (0.05 close, 1 free).",
    )
    scheduler = forms.CharField(
        required=False, widget=forms.Select(choices=TemplateVersion.Scheduler.choices), label="Scheduler"
    )
    steps = forms.CharField(required=False, widget=_number({"min": 1, "max": 100}), label="Steps")
    guidance = forms.CharField(
        required=False, widget=_number({"min": 0, "max": 30, "step": 0.5}), label="Guidance (CFG)"
    )
    width = forms.CharField(
        required=False,
        widget=_number({"min": 256, "max": 2048, "step": 64}),
        help_text="Empty: the base model's own size. Multiples of 64, 256–2048.",
    )
    height = forms.CharField(required=False, widget=_number({"min": 256, "max": 2048, "step": 64}))
    identity_weight = forms.CharField(
        required=False,
        label="Identity weight",
        widget=forms.NumberInput(attrs={"type": "range", "min": 0, "max": 2, "step": 0.05, "list": "identity-ticks"}),
        help_text=IDENTITY_HELP,
    )
    images_per_run = forms.CharField(required=False, label="Images per run", widget=_number({"min": 1, "max": 32}))
    price_per_image = forms.CharField(
        required=False, label="Price per image", widget=_number({"min": 0, "step": "0.01"})
    )
    note = forms.CharField(
        required=False,
        max_length=versions.MAX_NOTE_CHARS,
        label="What changed",
        help_text="Kept with the new version (optional).",
    )

    SETTINGS_FIELDS = render_settings.INPUT_FIELDS

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        self.template = template
        self.current = template.current_version if template is not None else None
        if template is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_for(template)
        super().__init__(*args, **kwargs)
        current_model = self.current.base_model if self.current is not None else None
        self.fields["base_model"].widget.choices = model_choices(current_model)
        loras = [("", "None")] + [(str(lora.pk), str(lora)) for lora in StyleLora.objects.order_by("name", "id")]
        self.fields["style_lora"].widget.choices = loras
        if self.current is None or not self.current.has_reference:
            self.fields.pop("remove_reference_image")
        if template is None or not template.cover_image:
            self.fields.pop("remove_cover_image")
        self.render_settings: render_settings.RenderSettings | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        settings_data = {name: data.get(name) for name in self.SETTINGS_FIELDS if name in self.fields}
        if not settings_data.get("reference_image"):
            settings_data.pop("reference_image", None)
        try:
            self.render_settings = render_settings.clean_settings(data=settings_data, current=self.current)
        except SettingsInvalid as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return data


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
        for key in ("style_weight", "strength", "guidance", "identity_weight"):
            values[key] = f"{values[key]:g}"
        initial.update(values)
    return initial


def new_template_initial() -> dict[str, Any]:
    initial: dict[str, Any] = {
        "category": Category.CLASSIC,
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
    }
    with contextlib.suppress(base_models.UnknownBaseModel):
        initial["base_model"] = base_models.default_model().name
    return initial


class StyleLoraUploadForm(forms.Form):
    file = forms.FileField(
        label="LoRA file (.safetensors)",
        error_messages={
            "required": "Choose the LoRA's .safetensors file to upload.",
            "empty": "The file is empty: upload the LoRA's .safetensors file.",
        },
        widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}),
    )
    name = forms.CharField(required=False, max_length=120, help_text="Empty: the file's name.")
    base_model = forms.ChoiceField(
        label="Made for the base model", help_text="Its layers are checked against this model's shapes."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = model_choices()
        with contextlib.suppress(base_models.UnknownBaseModel):
            self.fields["base_model"].initial = base_models.default_model().name


class StarterCopyForm(forms.Form):
    key = forms.CharField(max_length=60)
