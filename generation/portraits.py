"""Portraits: the actions on a portrait and the one portrait writer.

- :func:`more_like_me` (the only one: the double's page, the run page, the API and the client's gallery call it)
  and :func:`reroll` are small gpu jobs ("portraits.render", rendered by generation.jobs.render_portraits): the
  new portrait's `parent` is this one and it joins the same run item. :func:`hide`, :func:`unhide` and
  :func:`set_pick` are instant.
- :func:`store_portrait` stores every portrait (full-resolution PNG, WebP thumbnail, watermarked preview, recipe,
  likeness, flags, rank, pick); :func:`insert_rank` and :func:`choose_picks` rank them.

Keyword-only, typed, run in the current tenant context. Refusals are generation.runs.RunError. Nothing here
imports torch (the engine's recipe helpers load no ML code).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from engine.group import can_go_more_like_me as group_can_go  # no torch: recipe code only
from engine.rendering import can_go_more_like_me as engine_can_go
from generation.doubles import RENDER_KIND, enqueue_billed
from generation.models import DigitalDouble, Portrait, RenderRunItem
from generation.runs import RunError, require_run_ready
from jobs.models import Job
from templates_app.models import TemplateVersion
from tenants.access import acting_user
from tenants.models import User

log = structlog.get_logger("generation.portraits")

# The likeness flags, worst first: engine.likeness.FLAG_SEVERITY (kept here so the web never imports
# the face code; tests/generation/test_runs.py checks they agree).
FLAG_SEVERITY = ("no_face", "several_faces", "low_likeness", "blurry", "badly_exposed")

# --- Portrait actions -----------------------------------------------------------------------------------------


def can_go_more_like_me(portrait: Portrait) -> bool:
    """Whether "more like me" would still change the portrait's recipe (False at the identity weight's cap)."""

    if not portrait.recipe:
        return False
    if portrait.group_id is not None:
        return group_can_go(portrait.recipe)
    return engine_can_go(portrait.recipe)


def _action_payload(portrait: Portrait, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"double_id": portrait.double_id, **extra}
    if portrait.group_id is not None:  # a group portrait: every face is rendered again (billed per person)
        payload["people"] = portrait.subjects.count()
    if portrait.run_id:
        payload.update(run_id=portrait.run_id, item_id=portrait.item_id)
    return payload


def _require_renderable(portrait: Portrait) -> None:
    require_run_ready(portrait.double)
    if portrait.group_id is not None:
        faces = list(portrait.subjects.select_related("double"))
        if len(faces) != len((portrait.recipe or {}).get("subjects") or []):
            raise RunError(_("One of this group portrait's people was erased: it can't be rendered again."), status=409)
        for face in faces:
            require_run_ready(face.double)
    if not portrait.recipe or "recipe_version" not in portrait.recipe:
        raise RunError(_("This portrait has no recipe to render again."), status=409)


def more_like_me(*, portrait: Portrait, user: User | None = None) -> Job:
    """A small gpu job: the same recipe and seed, one step more identity weight (and less img2img strength).
    The new portrait's `parent` is this one; it joins the same run item. RunError 409 at the cap."""
    _require_renderable(portrait)
    if not can_go_more_like_me(portrait):
        raise RunError(_("This portrait is already as close to the client as “more like me” goes."), status=409)
    job = enqueue_billed(
        kind=RENDER_KIND,
        payload=_action_payload(portrait, more_like_me_of=portrait.pk),
        user=acting_user(user),
        error=RunError,
    )
    log.info("more_like_me_requested", portrait_id=portrait.pk, job_id=job.pk)
    return job


def reroll(*, portrait: Portrait, user: User | None = None) -> Job:
    """A small gpu job: the same recipe with a new random seed (drawn now, so a retry renders the same)."""
    _require_renderable(portrait)
    seed = portrait.seed
    new_seed = seed
    while new_seed == seed:
        new_seed = secrets.randbelow(2**32)
    payload = _action_payload(portrait, reroll_of=portrait.pk, seed=new_seed)
    job = enqueue_billed(kind=RENDER_KIND, payload=payload, user=acting_user(user), error=RunError)
    log.info("reroll_requested", portrait_id=portrait.pk, job_id=job.pk)
    return job


def hide(*, portrait: Portrait) -> Portrait:
    """Instant: the portrait is hidden from the run's results (and can't stay a pick)."""
    Portrait.objects.filter(pk=portrait.pk).update(is_hidden=True, is_pick=False)
    portrait.is_hidden, portrait.is_pick = True, False
    return portrait


def unhide(*, portrait: Portrait) -> Portrait:
    Portrait.objects.filter(pk=portrait.pk).update(is_hidden=False)
    portrait.is_hidden = False
    return portrait


def set_pick(*, portrait: Portrait, pick: bool) -> Portrait:
    """Instant: mark or unmark the portrait as a pick. A hidden portrait can't be a pick (RunError 409)."""
    if pick and portrait.is_hidden:
        raise RunError(_("Show this portrait again before picking it."), status=409)
    Portrait.objects.filter(pk=portrait.pk).update(is_pick=bool(pick))
    portrait.is_pick = bool(pick)
    return portrait


# --- Ranks and picks (used by the job handlers) ---------------------------------------------------------------


def quality_key(flags: Iterable[str], likeness: float | None) -> tuple[int, int, float]:
    """The order of engine.likeness.rank without sharpness (not stored): unflagged first, then the
    mildest worst flag, then higher likeness."""
    flags = list(flags or [])
    worst = min((FLAG_SEVERITY.index(f) if f in FLAG_SEVERITY else len(FLAG_SEVERITY) for f in flags), default=-1)
    severity = len(FLAG_SEVERITY) - worst if flags else 0
    return (int(bool(flags)), severity, -(likeness if likeness is not None else -1.0))


def choose_picks(order: Sequence[int], flagged: Sequence[bool], k: int) -> set[int]:
    """The best `k` indices in rank order, skipping flagged ones while unflagged ones remain."""
    clean = [i for i in order if not flagged[i]]
    rest = [i for i in order if flagged[i]]
    return set((clean + rest)[: max(0, k)])


def insert_rank(*, portrait: Portrait) -> None:
    """Give a portrait added to a run item later ("more like me", "re-roll") its place in the item's ranking:
    after every portrait at least as good (quality_key), the ones below move down by one."""
    if portrait.item_id is None:
        return
    others = list(Portrait.objects.filter(item_id=portrait.item_id).exclude(pk=portrait.pk).order_by("rank", "pk"))
    key = quality_key(portrait.flags, portrait.likeness)
    position = sum(1 for other in others if quality_key(other.flags, other.likeness) <= key)
    ordered = [*others[:position], portrait, *others[position:]]
    for rank, entry in enumerate(ordered, start=1):
        if entry.rank != rank or entry.pk == portrait.pk:
            Portrait.objects.filter(pk=entry.pk).update(rank=rank)
            entry.rank = rank
    portrait.rank = position + 1


def template_recipe(version: TemplateVersion) -> dict[str, Any]:
    """What a portrait's recipe records of its template version."""
    return {
        "id": version.pk,
        "number": version.number,
        "template_id": version.template_id,
        "name": version.template.name,
    }


def store_portrait(
    *,
    double: DigitalDouble,
    job: Job | None,
    item: RenderRunItem | None,
    version: TemplateVersion | None,
    png: bytes,
    thumbnail: bytes,
    preview: bytes,
    recipe: Mapping[str, Any],
    likeness: float | None,
    flags: list[str],
    rank: int | None,
    is_pick: bool,
    is_demo: bool,
    parent: Portrait | None = None,
    group_id: int | None = None,
) -> Portrait:
    """Store one portrait of a run: full-resolution PNG, WebP thumbnail and watermarked JPEG preview in private
    storage, with its recipe, likeness, flags, rank and pick."""
    portrait = Portrait(
        studio_id=double.studio_id,  # the file paths name the studio: set before the files are saved
        double=double,
        job=job,
        run_id=item.run_id if item is not None else None,
        item=item,
        template_version=version,
        recipe=dict(recipe),
        likeness=None if likeness is None else round(float(likeness), 2),
        flags=list(flags),
        rank=rank,
        is_pick=is_pick,
        is_demo=is_demo,
        parent=parent,
        group_id=group_id,
    )
    portrait.image.save("portrait.png", ContentFile(png), save=False)
    portrait.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
    portrait.preview.save("preview.jpg", ContentFile(preview), save=False)
    portrait.save()
    return portrait
