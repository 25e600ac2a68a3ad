"""Templates and their immutable versions: the actions (writes). Keyword-only, typed, run in the current tenant
context (a request, a task, `tenant_context()`), each action in one transaction. Refusals meant for people raise
:class:`TemplateError` with a message and an HTTP status; invalid render settings raise :class:`SettingsInvalid`
(templates_app/errors.py), from the one settings check (templates_app/render_settings.py).

Versioning: a template's render settings (templates_app.render_settings.RENDER_FIELDS) live in `TemplateVersion`
rows that are never updated. Saving a template makes a new version only when those settings differ from the
current version's; name, description, category and cover are the template's own and change in place. Portraits
point at the version that made them, so a past result always has its exact recipe.

Files: covers and reference images are stored as clean JPEGs (templates_app/images.py) under neutral private
paths. Versions share a reference image file when it did not change; files are never deleted while a row names
them (templates are archived, not deleted). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from templates_app import base_models
from templates_app.errors import SettingsInvalid, TemplateError
from templates_app.images import clean_image
from templates_app.models import Category, Template, TemplateVersion
from templates_app.render_settings import (
    VALUE_FIELDS,
    RenderSettings,
    clean_settings,
    comparable_version,
    version_values,
)
from templates_app.starters import get_starter
from tenants.access import acting_user
from tenants.context import require_studio_id
from tenants.models import User

log = structlog.get_logger("templates_app")

MAX_NOTE_CHARS = 200
COVER_MIN_SIDE = 128
COVER_MAX_SIDE = 1200
MAX_NAME_CHARS = Template._meta.get_field("name").max_length or 120


def _settings(data: Mapping[str, Any] | RenderSettings, current: TemplateVersion | None) -> RenderSettings:
    return data if isinstance(data, RenderSettings) else clean_settings(data=data, current=current)


def _check_meta(*, name: str | None, category: str | None) -> None:
    if name is not None:
        if not name.strip():
            raise TemplateError(_("Give the template a name."), field="name")
        if len(name.strip()) > MAX_NAME_CHARS:
            raise TemplateError(_("The name is at most %(max)s characters.") % {"max": MAX_NAME_CHARS}, field="name")
    if category is not None and category not in Category.values:
        labels = ", ".join(str(label) for label in Category.labels)
        raise TemplateError(_("Choose a category: %(labels)s.") % {"labels": labels}, field="category")


def _new_version(
    *, template: Template, render: RenderSettings, number: int, note: str, user: User | None
) -> TemplateVersion:
    version = TemplateVersion(
        template=template,
        number=number,
        **{name: getattr(render, name) for name in VALUE_FIELDS},
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
    user = acting_user(user)
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
    user = acting_user(user)
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
        if render is not None and (current is None or render.comparable() != comparable_version(current)):
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
        raise TemplateError(_("That version belongs to another template."), status=404)
    with transaction.atomic():
        locked = _locked(template)
        current = locked.current_version
        if current is not None and comparable_version(current) == comparable_version(version):
            raise TemplateError(
                _("Version %(old)s has the same settings as the current version %(current)s: nothing to restore.")
                % {"old": version.number, "current": current.number},
                status=409,
            )
        data = version_values(version)
        try:
            render = clean_settings(data=data, current=version)
        except SettingsInvalid as exc:
            raise TemplateError(
                _("Version %(number)s can't be restored: %(problem)s")
                % {"number": version.number, "problem": exc.message},
                status=409,
            ) from None
        new = _new_version(
            template=locked,
            render=render,
            number=_next_number(locked),
            note=f"Restored from version {version.number}",
            user=acting_user(user),
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
        return _("This template has no settings yet: save it first.")
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
            raise TemplateError(_("This template is archived: unarchive it before publishing it."), status=409)
        if locked.status != Template.Status.PUBLISHED:
            problem = runnable_problem(locked)
            if problem is not None:
                raise TemplateError(
                    _("This template can't be published: %(problem)s") % {"problem": problem}, status=409
                )
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
            raise TemplateError(_("This template is archived, not published."), status=409)
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
            raise TemplateError(_("This template is not archived."), status=409)
        locked.status = Template.Status.DRAFT
        locked.save(update_fields=["status", "updated_at"])
    _refresh(template, locked)
    return template


def duplicate(*, template: Template, user: User | None = None) -> Template:
    """A draft copy ("Copy of …") whose version 1 has the current version's settings (and the same cover)."""
    user = acting_user(user)
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
        raise TemplateError(_("There is no starter template called “%(key)s”.") % {"key": key}, status=404, field="key")
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
