"""Reads of templates, versions and style LoRAs (tenant-scoped through the models' managers).

Every list here is one query whatever its length: rows carry what pages show through select_related (the
current version, its style LoRA, the author), never a query per row (tests/templates_app/test_queries.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from templates_app import pose_references, render_settings, template_photos
from templates_app.errors import TemplateError
from templates_app.models import StyleLora, Template, TemplateVersion


def template_list(
    *, category: str | None = None, status: str | None = None, include_archived: bool = False
) -> QuerySet[Template]:
    """The studio's templates by name, with their current version. Archived ones only when asked for (or when
    `status` is "archived")."""
    templates = Template.objects.select_related(
        "current_version", "current_version__style_lora", "current_version__created_by"
    )
    if category:
        templates = templates.filter(category=category)
    if status:
        templates = templates.filter(status=status)
    elif not include_archived:
        templates = templates.exclude(status=Template.Status.ARCHIVED)
    return templates.order_by("name", "id")


def published_templates() -> QuerySet[Template]:
    """The templates staff may use for clients: published, with a current version."""
    return template_list(status=Template.Status.PUBLISHED).filter(current_version__isnull=False)


def get_template(*, template_id: Any) -> Template | None:
    return (
        Template.objects.select_related("current_version", "current_version__style_lora", "created_by")
        .filter(pk=template_id)
        .first()
    )


def template_versions(*, template: Template) -> QuerySet[TemplateVersion]:
    """Newest first, with their authors and style LoRAs."""
    return (
        TemplateVersion.objects.filter(template=template)
        .select_related("created_by", "style_lora")
        .order_by("-number", "-id")
    )


def get_version(*, template: Template, templateversion_id: Any) -> TemplateVersion | None:
    """A version of that template (another template's version, or another studio's, is None)."""
    return (
        TemplateVersion.objects.select_related("style_lora", "created_by", "template")
        .filter(template=template, pk=templateversion_id)
        .first()
    )


def previous_version(*, version: TemplateVersion) -> TemplateVersion | None:
    """The version made just before this one (for "compare with the previous version")."""
    return (
        TemplateVersion.objects.filter(template_id=version.template_id, number__lt=version.number)
        .select_related("style_lora", "created_by")
        .order_by("-number")
        .first()
    )


def template_photo_faces(*, version: TemplateVersion) -> tuple[template_photos.Box, ...] | None:
    """The faces found in a template photo version's photo (remembered per stored file); None for a version of
    another mode. An unreadable stored photo counts as no face."""
    try:
        return template_photos.photo_faces(version)
    except OSError:
        return ()


def template_pose_reference(*, version: TemplateVersion) -> pose_references.PoseReference | None:
    """What was found in a pose version's reference image (a skeleton, or the keypoints of the person in the photo,
    remembered per stored file); None for a version of another mode. An unreadable stored image counts as no pose,
    with a message saying so."""
    try:
        return pose_references.version_pose(version)
    except OSError:
        return pose_references.PoseReference(size=(0, 0), problem=pose_references.UNREADABLE_MESSAGE)


def is_group(version: TemplateVersion) -> bool:
    """Whether the version is a group template (2-6 people, {subject_1} ... in its prompt)."""
    return version.subject_slots > 1


def slot_boxes(version: TemplateVersion) -> list[tuple[float, float, float, float]] | None:
    """Where each person of a group template is, in slot order: (left, top, right, bottom) as fractions of the
    picture (engine.group.Subject.box). None for a single-person template, or a group one without boxes (the
    engine then gives the faces to the slots left to right)."""
    if not is_group(version) or len(version.slot_boxes or []) != version.subject_slots:
        return None
    return [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in version.slot_boxes]


def detect_slot_boxes(*, version: TemplateVersion, slots: int) -> list[tuple[float, float, float, float]]:
    """Slot boxes for `slots` people from the faces of the version's saved template photo, left to right.
    Raises TemplateError (400, a message for people) when there is no template photo, too few faces, or the
    photo can't be read."""
    try:
        return template_photos.detected_slot_boxes(version, slots)
    except OSError:
        raise TemplateError(_("The saved template photo can't be read: upload it again."), field="slot_boxes") from None
    except ValueError as exc:  # TooFewFaces, or no template photo
        raise TemplateError(str(exc), field="slot_boxes") from None


def style_loras(*, family: str | None = None) -> QuerySet[StyleLora]:
    loras = StyleLora.objects.select_related("created_by").order_by("name", "id")
    return loras.filter(family=family) if family else loras


# --- Comparing versions ---------------------------------------------------------------------------------------

FIELD_LABELS = {
    "prompt": gettext_lazy("Prompt"),
    "negative_prompt": gettext_lazy("Negative prompt"),
    "subject_slots": gettext_lazy("People in the picture"),
    "slot_boxes": gettext_lazy("Where each person is"),
    "base_model": gettext_lazy("Base model"),
    "style_lora": gettext_lazy("Style LoRA"),
    "style_weight": gettext_lazy("Style LoRA weight"),
    "reference_image": gettext_lazy("Reference image"),
    "reference_mode": gettext_lazy("Reference used as"),
    "strength": gettext_lazy("Reference strength"),
    "scheduler": gettext_lazy("Scheduler"),
    "steps": gettext_lazy("Steps"),
    "guidance": gettext_lazy("Guidance"),
    "width": gettext_lazy("Width"),
    "height": gettext_lazy("Height"),
    "identity_weight": gettext_lazy("Identity weight"),
    "face_pass": gettext_lazy("Face pass"),
    "face_denoise": gettext_lazy("Face pass denoise"),
    "face_identity_weight": gettext_lazy("Face pass identity weight"),
    "long_side": gettext_lazy("Print long side"),
    "upscale_denoise": gettext_lazy("Upscale denoise"),
    "mask_margin": gettext_lazy("Face mask margin"),
    "mask_feather": gettext_lazy("Face mask feather"),
    "images_per_run": gettext_lazy("Images per run"),
    "price_per_image": gettext_lazy("Price per image"),
}


@dataclass(frozen=True)
class ComparedField:
    name: str
    label: str
    a: str
    b: str

    @property
    def changed(self) -> bool:
        return self.a != self.b


def _display(version: TemplateVersion, name: str) -> str:
    if name == "style_lora":
        return str(version.style_lora) if version.style_lora_id else _("None")
    if name == "reference_image":
        return _("Image stored") if version.has_reference else _("None")
    if name == "reference_mode":
        return str(version.get_reference_mode_display()) if version.reference_mode else _("None")
    if name == "scheduler":
        return str(version.get_scheduler_display())
    if name in ("width", "height"):
        value = getattr(version, name)
        if version.reference_mode == TemplateVersion.ReferenceMode.PHOTO:
            return _("The template photo's size")
        return str(value) if value else _("The base model's own size")
    if name == "subject_slots":
        return _("Group of %(n)s") % {"n": version.subject_slots} if is_group(version) else _("1 (a single portrait)")
    if name == "slot_boxes":
        boxes = slot_boxes(version)
        if boxes is None:
            return _("Left to right") if is_group(version) else "—"
        return "; ".join(f"{n}: {' '.join(f'{side * 100:g}%' for side in box)}" for n, box in enumerate(boxes, start=1))
    if name == "face_pass":
        return _("On") if version.face_pass else _("Off")
    if name == "long_side":
        return f"{version.long_side} px" if version.long_side else _("The render's own size")
    value = getattr(version, name)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value not in (None, "") else "—"


def compare(*, a: TemplateVersion, b: TemplateVersion) -> list[ComparedField]:
    """Every render setting of two versions side by side (a changed reference image counts as changed)."""
    rows = []
    for name in render_settings.RENDER_FIELDS:
        left, right = _display(a, name), _display(b, name)
        if name == "reference_image" and a.reference_image.name != b.reference_image.name:
            left = f"{left} (#{a.number})" if a.has_reference else left
            right = f"{right} (#{b.number})" if b.has_reference else right
        rows.append(ComparedField(name=name, label=str(FIELD_LABELS[name]), a=left, b=right))
    return rows
