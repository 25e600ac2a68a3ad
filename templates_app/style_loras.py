"""Style LoRAs: upload (checked by templates_app/lora_files.py before anything is stored) and delete (only while
no template version uses it: versions never change). Keyword-only, typed, run in the current tenant context;
refusals raise :class:`TemplateError` (templates_app/errors.py) with a message and an HTTP status.
Nothing here imports torch.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from django.core.files import File
from django.db import transaction
from django.utils.translation import gettext as _

from templates_app import base_models, lora_files
from templates_app.errors import TemplateError
from templates_app.models import StyleLora, TemplateVersion
from tenants.access import acting_user
from tenants.context import require_studio_id
from tenants.models import User

log = structlog.get_logger("templates_app")


def upload_style_lora(*, upload: Any, name: str = "", base_model: str = "", user: User | None = None) -> StyleLora:
    """Check an uploaded style LoRA (lora_files.check_style_lora: safetensors only, header, LoRA keys, shapes
    of `base_model`, default the registry's default) and store it. 400 with the specific reason for a bad file,
    409 when the studio already has the same file; nothing is stored then."""
    if upload is None:
        raise TemplateError(_("Choose the LoRA's .safetensors file to upload."), field="file")
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
        raise TemplateError(_("The name is at most %(max)s characters.") % {"max": 120}, field="name")
    existing = StyleLora.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        raise TemplateError(
            _("This file is already in your style LoRAs as “%(name)s”.") % {"name": existing.name},
            status=409,
            field="file",
        )
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
            created_by=acting_user(user),
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
