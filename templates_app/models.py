"""Portrait templates, their immutable versions, and style LoRAs.

A photographer designs a `Template` (the editable identity: name, category, cover, status). Every save of its
settings creates a new, immutable `TemplateVersion` (prompt, base model, style LoRA, reference image or template
photo, scheduler, steps, guidance, size, identity weight, the finishing stages: face pass, print size, face mask;
images per run, price; for a group template, the number of people and where each one is): portraits point at the
version that made them, so editing a template never changes past results. `Template.current_version` is the version
used when staff run it.

Everything here is tenant-owned. Files (covers, reference images, style LoRAs) live in private storage under paths
that name no person and no template (`templates/<studio>/<kind>/<random>.<ext>`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy

from tenants.models import TenantOwned


def _private_path(kind: str, instance: Any, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    ext = ext if ext.isalnum() and len(ext) <= 12 else "bin"
    return f"templates/{instance.studio_id}/{kind}/{uuid.uuid4().hex}.{ext}"


def cover_path(instance: Any, filename: str) -> str:
    return _private_path("cover", instance, filename)


def reference_path(instance: Any, filename: str) -> str:
    return _private_path("reference", instance, filename)


def style_lora_path(instance: Any, filename: str) -> str:
    return _private_path("lora", instance, "safetensors")


class ImmutableVersion(RuntimeError):
    """Something tried to change a saved TemplateVersion (a programming error: versions are immutable)."""


class Category(models.TextChoices):
    BUSINESS = "business", gettext_lazy("Business headshot")
    CLASSIC = "classic", gettext_lazy("Classic studio portrait")
    WEDDING = "wedding", gettext_lazy("Wedding")
    FAMILY = "family", gettext_lazy("Family")
    VINTAGE = "vintage", gettext_lazy("Vintage")
    FASHION = "fashion", gettext_lazy("Fashion")
    TRADITIONAL = "traditional", gettext_lazy("Traditional dress")
    FANTASY = "fantasy", gettext_lazy("Fantasy")
    OTHER = "other", gettext_lazy("Other")


class StyleLora(TenantOwned):
    """A style LoRA a photographer uploaded (safetensors only, header checked: LoRA keys only, shapes of the
    family's base model). Immutable once stored: versions that use it keep rendering the same way."""

    name = models.CharField(max_length=120)
    file = models.FileField(upload_to=style_lora_path, max_length=255)
    family = models.CharField(max_length=10, help_text="sd15 or sdxl: the base model family it was trained for.")
    base_model = models.CharField(
        max_length=100, blank=True, help_text="The registry name of the base model its shapes were checked against."
    )
    cross_attention_dim = models.PositiveIntegerField(
        null=True, blank=True, help_text="The cross-attention width its UNet layers expect (768 SD 1.5, 2048 SDXL)."
    )
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    rank = models.PositiveIntegerField(null=True, blank=True)
    tensors = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["studio", "family"], name="stylelora_studio_family")]

    def __str__(self) -> str:
        return f"{self.name} ({self.family})"


class Template(TenantOwned):
    """A portrait style a studio offers. Its render settings live in its versions; `current_version` is the one
    in use. Only published templates can be run for clients; photographers edit, staff use."""

    class Status(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Draft")
        PUBLISHED = "published", gettext_lazy("Published")
        ARCHIVED = "archived", gettext_lazy("Archived")

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.CLASSIC)
    cover_image = models.FileField(upload_to=cover_path, max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    current_version = models.ForeignKey(
        "TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    starter_key = models.CharField(
        max_length=60, blank=True, help_text="The built-in starter template this one was copied from, if any."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["studio", "status", "category"], name="template_studio_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED


class TemplateVersion(TenantOwned):
    """One immutable snapshot of a template's render settings. Never updated after creation (versions.py creates a
    new version instead); `number` counts from 1 per template."""

    class Scheduler(models.TextChoices):
        DPMPP_2M_KARRAS = "dpmpp_2m_karras", "DPM++ 2M Karras"
        EULER_A = "euler_a", gettext_lazy("Euler ancestral")
        DDIM = "ddim", "DDIM"

    class ReferenceMode(models.TextChoices):
        NONE = "", gettext_lazy("No reference")
        IMG2IMG = "img2img", gettext_lazy("Composition (img2img)")
        POSE = "pose", gettext_lazy("Pose (ControlNet)")
        CANNY = "canny", gettext_lazy("Edges (ControlNet canny)")
        PHOTO = "photo", gettext_lazy("Template photo (the client's face is put into it)")

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    prompt = models.TextField(help_text="Contains {subject}: where the client's trigger phrase goes.")
    negative_prompt = models.TextField(blank=True)
    # Group templates (issue 17): 2-6 people in one picture, named {subject_1} ... {subject_<n>} in the prompt, each
    # face rendered with that person's own identity LoRA (engine/group.py). 1: a single-person template.
    subject_slots = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(6)],
        help_text="People in the picture: 1 for a single portrait, 2-6 for a group ({subject_1} ... in the prompt).",
    )
    slot_boxes = models.JSONField(
        default=list,
        blank=True,
        help_text="Where each person of a group is: [left, top, right, bottom] per slot, fractions of the picture "
        "(0-1); empty: the faces are given to the slots left to right.",
    )
    base_model = models.CharField(max_length=100, help_text="The registry name of the base model.")
    style_lora = models.ForeignKey(StyleLora, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    style_weight = models.FloatField(default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    reference_image = models.FileField(
        upload_to=reference_path,
        max_length=255,
        blank=True,
        help_text="The reference image; in the template photo mode, the template photo.",
    )
    reference_mode = models.CharField(max_length=10, choices=ReferenceMode.choices, default="", blank=True)
    strength = models.FloatField(
        default=0.6, validators=[MinValueValidator(0.05), MaxValueValidator(1.0)], help_text="img2img strength"
    )
    scheduler = models.CharField(max_length=20, choices=Scheduler.choices, default=Scheduler.DPMPP_2M_KARRAS)
    steps = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1), MaxValueValidator(100)])
    guidance = models.FloatField(default=7.0, validators=[MinValueValidator(0.0), MaxValueValidator(30.0)])
    width = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Empty: the base model's native size. Ignored by a template photo (the photo's own size).",
    )
    height = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Empty: the base model's native size. Ignored by a template photo (the photo's own size).",
    )
    identity_weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text='Between "more beautiful" (lower) and "more like me" (higher).',
    )
    # Finishing: the pipeline's stages after the base render (face pass, upscale to print size) and the soft face
    # mask that the face pass and the template photo mode change pixels through (engine/masks.py).
    face_pass = models.BooleanField(
        default=True, help_text="Face pass: re-render each face at full resolution with the client's likeness."
    )
    face_denoise = models.FloatField(
        default=0.4,
        validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
        help_text="How much the face pass changes the face (0.05 barely, 1 entirely).",
    )
    face_identity_weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="The identity LoRA's weight in the face pass.",
    )
    long_side = models.PositiveIntegerField(
        default=3000,
        validators=[MaxValueValidator(8192)],
        help_text="Print size: the long side in px (3000 px is about 25 cm at 300 dpi); 0: as rendered.",
    )
    upscale_denoise = models.FloatField(
        default=0.25,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.6)],
        help_text="How much detail the tiled re-render adds when upscaling (0: enlarge only).",
    )
    mask_margin = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The face mask: the face box grown by this fraction of the face's size.",
    )
    mask_feather = models.FloatField(
        default=0.15,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The face mask's soft edge, as a fraction of the face's size (0: a hard edge).",
    )
    images_per_run = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1), MaxValueValidator(32)])
    price_per_image = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    note = models.CharField(max_length=200, blank=True, help_text="What changed in this version.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["studio", "template", "number"], name="templateversion_unique_number")
        ]
        indexes = [models.Index(fields=["studio", "template", "-number"], name="tversion_studio_template")]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersion("A template version is never changed: save the template to make a new version.")
        super().save(*args, **kwargs)

    @property
    def has_reference(self) -> bool:
        return bool(self.reference_image and self.reference_image.name)

    @property
    def is_group(self) -> bool:
        """A group template: 2-6 people in the picture ({subject_1} ... in the prompt)."""
        return self.subject_slots > 1
