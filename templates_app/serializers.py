"""Serializers of the templates API. Output shapes, and input carriers only: the checks of render settings are
templates_app.render_settings.clean_settings (shared with the pages), so the messages are the same everywhere."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engine.prompts import MAX_PROMPT_TOKENS
from templates_app.models import Category, StyleLora, Template, TemplateVersion
from templates_app.render_settings import (
    INPUT_FIELDS,
    LONG_SIDE_MAX,
    LONG_SIDE_MIN,
    MAX_SUBJECTS,
    PHOTO_MAX_SIDE,
    PHOTO_MIN_SIDE,
    RENDER_FIELDS,
)
from templates_app.template_photos import PHOTO_MIN_FACE_PX
from tenants.media import signed_media_url


def _media_link(serializer: serializers.Serializer, obj: Any, field: str) -> str | None:
    if not getattr(obj, field, None):
        return None
    request = serializer.context.get("request")
    path = signed_media_url(obj=obj, field=field, request=request)
    return request.build_absolute_uri(path) if request is not None else path


class StyleLoraSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = StyleLora
        fields = [
            "id",
            "name",
            "family",
            "base_model",
            "cross_attention_dim",
            "rank",
            "tensors",
            "size",
            "sha256",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields


class StyleLoraUploadSerializer(serializers.Serializer):
    """The multipart body of a style LoRA upload (documentation only: the view reads request.FILES itself,
    after the size-limiting upload handler is installed)."""

    file = serializers.FileField(help_text="The LoRA as .safetensors (pickle formats are refused).")
    name = serializers.CharField(required=False, allow_blank=True, max_length=120, help_text="Default: the file name.")
    base_model = serializers.CharField(
        required=False, allow_blank=True, help_text="The base model it is made for (default: the platform's default)."
    )


SLOT_BOXES_SCHEMA = {
    "type": "array",
    "maxItems": MAX_SUBJECTS,
    "items": {
        "type": "array",
        "minItems": 4,
        "maxItems": 4,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "description": "[left, top, right, bottom] as fractions of the picture's width and height.",
    },
}


@extend_schema_field(SLOT_BOXES_SCHEMA)
class SlotBoxesField(serializers.JSONField):
    """A group template's slot boxes: JSON (in a multipart body, a JSON string). The service checks them."""


def _render_outputs() -> list[str]:
    """The render settings as a version shows them, in RENDER_FIELDS order: the style LoRA as its id and name."""
    outputs: list[str] = []
    for name in RENDER_FIELDS:
        outputs += ["style_lora_id", "style_lora_name"] if name == "style_lora" else [name]
    return outputs


class TemplateVersionSerializer(serializers.ModelSerializer):
    template_id = serializers.IntegerField(read_only=True)
    style_lora_id = serializers.IntegerField(read_only=True, allow_null=True)
    style_lora_name = serializers.CharField(source="style_lora.name", read_only=True, default=None)
    reference_image = serializers.SerializerMethodField(
        help_text="A signed link to the reference image, valid for MEDIA_LINK_MAX_AGE_SECONDS; null when none."
    )
    slot_boxes = SlotBoxesField(
        read_only=True, help_text="One [left, top, right, bottom] box per person (fractions), or [] for none."
    )
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = TemplateVersion
        fields = [
            "id",
            "template_id",
            "number",
            *_render_outputs(),
            "note",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_reference_image(self, version: TemplateVersion) -> str | None:
        return _media_link(self, version, "reference_image")


class TemplateSerializer(serializers.ModelSerializer):
    cover_image = serializers.SerializerMethodField(help_text="A signed link to the cover image, or null.")
    current_version = TemplateVersionSerializer(read_only=True, allow_null=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = Template
        fields = [
            "id",
            "name",
            "description",
            "category",
            "status",
            "starter_key",
            "cover_image",
            "current_version",
            "created_at",
            "updated_at",
            "created_by",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_cover_image(self, template: Template) -> str | None:
        return _media_link(self, template, "cover_image")


class TemplateSavedSerializer(TemplateSerializer):
    version_created = serializers.BooleanField(
        read_only=True, help_text="Whether this save made a new version (the render settings changed)."
    )

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "version_created"]
        read_only_fields = fields


class RenderSettingsInput(serializers.Serializer):
    """Render settings: every key is optional; one left out keeps the current version's value (or the default
    for a new template). Ranges and rules are checked by the service, with messages per field."""

    prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=f"Must contain {{subject}} (a group template: {{subject_1}} ... instead); at most "
        f"{MAX_PROMPT_TOKENS} CLIP tokens ({{subject}} counts as 2).",
    )
    negative_prompt = serializers.CharField(
        required=False, allow_blank=True, help_text=f"At most {MAX_PROMPT_TOKENS} CLIP tokens."
    )
    subject_slots = serializers.IntegerField(
        required=False,
        help_text=f"People in the picture: 1 (default) a single portrait, 2-{MAX_SUBJECTS} a group template, whose "
        "prompt names each person {subject_1} ... {subject_<n>} (every one at least once, none beyond n, and not "
        "{subject}).",
    )
    slot_boxes = SlotBoxesField(
        required=False,
        allow_null=True,
        help_text="A group template's optional slot boxes: one [left, top, right, bottom] per person, fractions of "
        "the picture (0 <= left < right <= 1, 0 <= top < bottom <= 1), no two the same; each person gets the face "
        "nearest their box. [] (default): the faces go to the people left to right. In a multipart body, a JSON "
        "string.",
    )
    base_model = serializers.CharField(required=False, allow_blank=True, help_text="A registry name.")
    style_lora = serializers.IntegerField(required=False, allow_null=True, help_text="A style LoRA's id, or null.")
    style_weight = serializers.FloatField(required=False)
    reference_image = serializers.FileField(
        required=False,
        help_text='multipart only: a new reference image; with reference_mode "photo", the template photo '
        f"({PHOTO_MIN_SIDE}-{PHOTO_MAX_SIDE} px kept, with a face of at least {PHOTO_MIN_FACE_PX} px); with "
        'reference_mode "pose", an OpenPose skeleton image (used as it is) or a photo of one person (its pose is '
        "taken from it; refused when no person is found).",
    )
    remove_reference_image = serializers.BooleanField(required=False)
    reference_mode = serializers.ChoiceField(
        required=False,
        allow_blank=True,
        choices=TemplateVersion.ReferenceMode.choices,
        help_text='"photo": the reference image is a template photo; the client\'s face is put into it by inpainting '
        "through the face mask, everything outside the mask stays the photo, and width and height are ignored "
        "(the photo's size, resized to long_side).",
    )
    strength = serializers.FloatField(required=False)
    scheduler = serializers.CharField(required=False)
    steps = serializers.IntegerField(required=False)
    guidance = serializers.FloatField(required=False)
    width = serializers.IntegerField(required=False, allow_null=True)
    height = serializers.IntegerField(required=False, allow_null=True)
    identity_weight = serializers.FloatField(required=False, help_text='0 "more beautiful" … 2 "more like me".')
    face_pass = serializers.BooleanField(
        required=False, help_text="Face pass: re-render each face at full resolution with the client's likeness."
    )
    face_denoise = serializers.FloatField(
        required=False, help_text="0.05-1: how much the face pass changes the face (default 0.4)."
    )
    face_identity_weight = serializers.FloatField(
        required=False, help_text="0-2: the identity LoRA's weight in the face pass (default 1)."
    )
    long_side = serializers.IntegerField(
        required=False,
        help_text=f"The print size: the portraits' long side in px, {LONG_SIDE_MIN}-{LONG_SIDE_MAX} (3000 px is about "
        "25 cm at 300 dpi); 0: the render's own size.",
    )
    upscale_denoise = serializers.FloatField(
        required=False, help_text="0-0.6: how much detail the tiled re-render adds when upscaling (0: enlarge only)."
    )
    mask_margin = serializers.FloatField(
        required=False, help_text="0-1: the face mask grows each face box by this fraction of the face's size."
    )
    mask_feather = serializers.FloatField(
        required=False, help_text="0-1: the face mask's soft edge, a fraction of the face's size (0: hard edge)."
    )
    images_per_run = serializers.IntegerField(required=False)
    price_per_image = serializers.DecimalField(required=False, max_digits=12, decimal_places=4)


class TemplateCreateSerializer(RenderSettingsInput):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    category = serializers.ChoiceField(choices=Category.choices, required=False, default=Category.CLASSIC)
    cover_image = serializers.FileField(required=False, help_text="multipart only.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    SETTINGS_KEYS = INPUT_FIELDS


class TemplateUpdateSerializer(RenderSettingsInput):
    name = serializers.CharField(required=False, max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    cover_image = serializers.FileField(required=False, help_text="multipart only.")
    remove_cover_image = serializers.BooleanField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=200)


class StarterSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    prompt = serializers.CharField()
    negative_prompt = serializers.CharField()
    subject_slots = serializers.IntegerField(help_text="People in the picture (2 or more: a group template).")
    scheduler = serializers.CharField()
    steps = serializers.IntegerField()
    guidance = serializers.FloatField()
    identity_weight = serializers.FloatField()
    face_pass = serializers.BooleanField()
    long_side = serializers.IntegerField()
    images_per_run = serializers.IntegerField()
    price_per_image = serializers.DecimalField(max_digits=8, decimal_places=2)


class StarterCopySerializer(serializers.Serializer):
    key = serializers.CharField(max_length=60, help_text="The starter's key (GET /api/starters/).")
