"""Group portraits (issue 17): two to six of the studio's clients in one picture, each face regenerated with its own
person's identity LoRA and no other's.

A group render is the portrait pipeline (engine/portrait.py) with `subjects` instead of one identity:

1. **scene**: the base render with no identity adapter at all; the prompt's ``{subject_<n>}`` placeholders say
   "a person" (so the model draws the right number of people without anyone's likeness).
2. **faces**: the ``len(subjects)`` largest faces are found and each is given to one slot: by the slots' boxes
   when every subject has one (fractions of the image; the assignment with the least total distance between
   a face's centre and its slot's), else left to right in slot order. Fewer faces than people fails the portrait,
   with the numbers said.
3. **face pass, one face at a time**: the face's crop re-rendered at the native size (img2img) with that subject's
   LoRA alone and the prompt with ``{subject_<n>}`` of that slot as its trigger phrase (the others: "a person"),
   then pasted back through that face's own feathered mask. Each render loads one identity adapter and unloads it
   (engine.rendering.render), so no face is ever rendered with two identities, and every pixel outside a face's
   mask support keeps what it was (the masks don't overlap where faces don't).
4. **upscale**: enlarged, and re-rendered in tiles (when its denoise is above 0) with **no** identity adapter: a
   tile may hold several faces, and one person's LoRA would pull the others toward them.
5. **output check**, as for one person.

The recipe says who is where: ``recipe["subjects"]`` lists each slot with its trigger phrase, its LoRA's sha256
and its face box (output pixels); the face pass's entry lists the same per face.

A **template photo** with several people is the scene instead of a render: its faces go to the slots the same way
(the photographer's slot boxes fix the assignment), and each is inpainted with its own person's LoRA alone, one at
a time, every other pixel staying the photo's (`_group_template_photo`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from engine import masks as masks_
from engine.checkpoints import BaseModelSpec
from engine.portrait import (
    Box,
    Detector,
    FacePass,
    Portrait,
    Runner,
    StageFailed,
    StageProgress,
    Stages,
    _faces,
    _finish,
    _paste,
    _Progress,
    _runner,
    _stage,
    _stage_config,
    _stage_seed,
    _upscale,
    detect_faces,
    prepare_photo,
    stage_steps,
    template_photo_recipe,
)
from engine.rendering import CancelCheck, PipelineCache, RenderConfig, _lora_bytes, image_sha256
from engine.rendering import more_like_me as rendering_more_like_me

MIN_SUBJECTS = 2
MAX_SUBJECTS = 6
SLOT = re.compile(r"\{subject_(\d+)\}")
SOMEONE = "a person"


@dataclass(frozen=True)
class Subject:
    """One person of a group portrait: their slot (1-based: ``{subject_<slot>}`` in the prompt), their identity
    LoRA (a file or its bytes) and trigger phrase, and optionally where the slot is in the picture (`box`:
    left, top, right, bottom as fractions of the image's width and height) to give them the nearest face."""

    slot: int
    identity_lora: Path | bytes
    trigger_phrase: str
    box: tuple[float, float, float, float] | None = None


def check_subjects(subjects: Sequence[Subject], prompt: str) -> None:
    """Raise ValueError (a message for people) unless the group is 2-6 people with distinct slots 1..n, each with
    a trigger phrase, and the prompt names no slot the group doesn't have."""
    if not MIN_SUBJECTS <= len(subjects) <= MAX_SUBJECTS:
        raise ValueError(f"A group portrait has {MIN_SUBJECTS} to {MAX_SUBJECTS} people, not {len(subjects)}.")
    slots = sorted(s.slot for s in subjects)
    if slots != list(range(1, len(subjects) + 1)):
        raise ValueError(f"The group's slots must be 1 to {len(subjects)}, each once (got {slots}).")
    for subject in subjects:
        if not subject.trigger_phrase.strip():
            raise ValueError(f"Person {subject.slot} of the group has no trigger phrase.")
        if subject.box is not None:
            left, top, right, bottom = subject.box
            if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
                raise ValueError(f"Person {subject.slot}'s box must be fractions of the image (0 to 1).")
    named = {int(n) for n in SLOT.findall(prompt)}
    extra = sorted(named - set(slots))
    if extra:
        raise ValueError(
            f"The prompt names {{subject_{extra[0]}}} but the group has {len(subjects)} people: "
            f"use {{subject_1}} to {{subject_{len(subjects)}}}."
        )


def subject_prompt(prompt: str, slot: int | None) -> str:
    """`prompt` for one face of the group (`slot`) or for the scene (None): ``{subject_<slot>}`` becomes
    ``{subject}`` (where the render puts that person's trigger phrase), every other ``{subject_<n>}`` (all of them
    for the scene) "a person"; a plain ``{subject}`` is the face's person too, and "people" in the scene."""

    def replace(match: re.Match[str]) -> str:
        return "{subject}" if slot is not None and int(match.group(1)) == slot else SOMEONE

    text = SLOT.sub(replace, prompt)
    if slot is None:
        text = text.replace("{subject}", "people")
    return text


def assign_faces(faces: Sequence[Box], subjects: Sequence[Subject], size: tuple[int, int]) -> list[Box]:
    """Each subject's face (in the subjects' order): by the slots' boxes when every subject has one (the
    assignment of least total distance between centres, over every permutation: at most 6! = 720), else left to
    right by the faces' centres, in slot order. `faces` has exactly one face per subject."""
    assert len(faces) == len(subjects)

    def centre(box: Sequence[float]) -> tuple[float, float]:
        return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2

    if all(s.box is not None for s in subjects):
        width, height = size
        boxes = [s.box for s in subjects if s.box is not None]
        targets = [centre((b[0] * width, b[1] * height, b[2] * width, b[3] * height)) for b in boxes]
        points = [centre(face) for face in faces]

        def cost(order: tuple[int, ...]) -> float:
            return sum(
                ((points[f][0] - targets[i][0]) ** 2 + (points[f][1] - targets[i][1]) ** 2) ** 0.5
                for i, f in enumerate(order)
            )

        best = min(itertools.permutations(range(len(faces))), key=cost)
        return [faces[f] for f in best]
    by_x = sorted(faces, key=lambda face: (centre(face)[0], face[1]))
    by_slot = sorted(range(len(subjects)), key=lambda i: subjects[i].slot)
    assigned: list[Box] = [by_x[0]] * len(subjects)
    for rank, index in enumerate(by_slot):
        assigned[index] = by_x[rank]
    return assigned


def render_group_portraits(
    *,
    cache: PipelineCache,
    spec: BaseModelSpec,
    subjects: Sequence[Subject],
    config: RenderConfig,
    stages: Stages | None = None,
    progress: StageProgress | None = None,
    should_cancel: CancelCheck | None = None,
    detector: Detector | None = None,
) -> list[Portrait]:
    """One group portrait per seed of `config` (see the module notes). `stages.face_pass` sets the faces' identity
    weight, denoise and masks (its defaults when None: every group face is regenerated); `stages.upscale` and
    `stages.check` as for one person; a template photo is refused (not supported for groups yet)."""
    stages = stages or Stages()
    check_subjects(subjects, config.prompt)
    subjects = sorted(subjects, key=lambda s: s.slot)
    detect = detector or detect_faces
    loras = [
        _lora_bytes(Path(s.identity_lora), "identity") if isinstance(s.identity_lora, Path | str) else s.identity_lora
        for s in subjects
    ]
    digests = [hashlib.sha256(data).hexdigest() for data in loras]
    face_settings = stages.face_pass or FacePass()
    shares = {"base": 1.0, "face_pass": 0.3 * len(subjects)}
    if stages.upscale is not None and stages.upscale.denoise > 0:
        shares["upscale"] = 0.8
    meter = _Progress(progress, shares)
    scene_config = _stage_config(config, prompt=subject_prompt(config.prompt, None))

    def run(lora: bytes | None, trigger: str) -> Runner:
        return _runner(cache, spec, lora, trigger, should_cancel)

    if stages.template_photo is not None:
        portraits = _group_template_photo(run, spec, config, stages, subjects, loras, digests, detect, progress)
        _finish(stages, portraits)
        return portraits
    nobody = run(None, "")
    started = time.perf_counter()
    base = nobody(scene_config, meter.stage("base"))
    seconds = round((time.perf_counter() - started) / max(len(base), 1), 3)
    portraits = []
    for item in base:
        recipe = item.recipe
        recipe["prompt_template"] = config.prompt
        recipe["stages"] = [{"name": "base", "mode": recipe.get("mode"), "seconds": seconds, "identity": None}]
        recipe["subjects"] = [
            {"slot": s.slot, "trigger_phrase": s.trigger_phrase, "identity_sha256": digest, "face": None}
            for s, digest in zip(subjects, digests, strict=True)
        ]
        portraits.append(Portrait(seed=item.seed, recipe=recipe, image=item.image))

    def faces_pass(portrait: Portrait, index: int) -> None:
        _group_face_pass(run, meter, config, face_settings, subjects, loras, detect, portrait)

    for index, portrait in enumerate(portraits):
        _stage(portrait, "face_pass", lambda p, i=index: faces_pass(p, i))
    for index, portrait in enumerate(portraits):
        _stage(portrait, "upscale", lambda p, i=index: _upscale(nobody, meter, scene_config, stages, p, i, cache))
        if stages.upscale is not None:
            upscaled = portrait.recipe["stages"][-1]
            if upscaled.get("name") == "upscale":
                upscaled["identity"] = None  # tiles may hold several faces: no one's LoRA
    _finish(stages, portraits)
    for portrait in portraits:
        for entry, box in zip(portrait.recipe["subjects"], portrait.faces or [None] * len(subjects), strict=True):
            entry["face"] = list(box) if box is not None else None
    return portraits


def _group_face_pass(
    run: Callable[[bytes | None, str], Runner],
    meter: _Progress,
    config: RenderConfig,
    settings: Any,
    subjects: Sequence[Subject],
    loras: Sequence[bytes],
    detect: Detector,
    portrait: Portrait,
) -> None:
    assert portrait.image is not None
    steps = stage_steps(config, settings.steps, settings.denoise)
    entry: dict[str, Any] = {
        "name": "face_pass",
        "identity_weight": float(settings.identity_weight),
        "denoise": float(settings.denoise),
        "mask": asdict(settings.mask),
        "steps": steps,
        "max_faces": len(subjects),
        "per_face": [],
    }
    portrait.recipe["stages"].append(entry)
    try:
        faces = _faces(detect, portrait.image, len(subjects))
    except Exception as exc:
        raise StageFailed("face_pass", f"the faces could not be found ({exc})") from None
    entry["faces"] = len(faces)
    if len(faces) < len(subjects):
        raise StageFailed("face_pass", f"the picture shows {len(faces)} face(s) for a group of {len(subjects)} people")
    assigned = assign_faces(faces, subjects, portrait.image.size)
    native = min(int(portrait.recipe["width"]), int(portrait.recipe["height"]))
    image = portrait.image
    for number, (subject, lora, box) in enumerate(zip(subjects, loras, assigned, strict=True)):
        crop = masks_.crop_box(box, settings.mask, image.size)
        cfg = _stage_config(
            config,
            prompt=subject_prompt(config.prompt, subject.slot),
            seeds=[_stage_seed(portrait.seed, 2, number)],
            width=native,
            height=native,
            identity_weight=float(settings.identity_weight),
            strength=float(settings.denoise),
            steps=steps,
            init_images=[image.crop(crop).resize((native, native), Image.Resampling.LANCZOS)],
        )
        report = meter.stage("face_pass", len(config.seeds) * len(subjects))
        rendered = run(lora, subject.trigger_phrase)(cfg, report)
        image = _paste(image, rendered[0].image, crop, box, settings.mask)
        entry["per_face"].append(
            {
                "slot": subject.slot,
                "face": list(box),
                "identity_sha256": hashlib.sha256(lora).hexdigest(),
                "adapters": [a.get("name") for a in rendered[0].recipe.get("adapters", [])],
            }
        )
    portrait.image = image
    portrait.faces = list(assigned)


def _group_template_photo(
    run: Callable[[bytes | None, str], Runner],
    spec: BaseModelSpec,
    config: RenderConfig,
    stages: Stages,
    subjects: Sequence[Subject],
    loras: Sequence[bytes],
    digests: Sequence[str],
    detect: Detector,
    progress: StageProgress | None,
) -> list[Portrait]:
    """A group template photo: the photographer's photo is the scene. Its `len(subjects)` largest faces go to the
    slots (by the slots' boxes, else left to right: the photographer fixes the assignment with the boxes), and each
    face is inpainted at `strength` with its own person's LoRA alone, one face at a time, then pasted back through
    its own mask; every other pixel stays the photo's. The photo is resized to the print size (no re-render)."""
    settings = stages.template_photo
    assert settings is not None
    started = time.perf_counter()
    photo = prepare_photo(settings.image, stages.upscale.long_side if stages.upscale else None)
    faces = _faces(detect, photo, len(subjects))
    if len(faces) < len(subjects):
        raise ValueError(
            f"the template photo shows {len(faces)} face(s) for a group of {len(subjects)} people: use a photo "
            "where every person's face is clearly visible"
        )
    assigned = assign_faces(faces, subjects, photo.size)
    native = config.width or spec.native_resolution
    steps = stage_steps(config, None, settings.strength)
    prepared = round(time.perf_counter() - started, 3)
    photo_sha = image_sha256(ImageOps.exif_transpose(settings.image).convert("RGB"))
    meter = _Progress(progress, {"template_photo": 1.0})
    portraits = []
    for seed in config.seeds:
        portrait = Portrait(seed=seed, recipe={}, image=photo, faces=list(assigned))
        per_face: list[dict[str, Any]] = []
        holder: dict[str, Any] = {}

        def inpaint(
            item: Portrait, seed: int = seed, per_face: list[dict[str, Any]] = per_face, holder: dict[str, Any] = holder
        ) -> None:
            image = photo
            for number, (subject, lora, digest, box) in enumerate(zip(subjects, loras, digests, assigned, strict=True)):
                crop = masks_.crop_box(box, settings.mask, photo.size)
                mask = masks_.face_mask(photo.size, [box], settings.mask)
                crop_mask = Image.fromarray((mask[crop[1] : crop[3], crop[0] : crop[2]] * 255).round().astype("uint8"))
                cfg = _stage_config(
                    config,
                    prompt=subject_prompt(config.prompt, subject.slot),
                    seeds=[_stage_seed(seed, 1, number)],
                    width=native,
                    height=native,
                    init_images=[image.crop(crop).resize((native, native), Image.Resampling.LANCZOS)],
                    mask_images=[crop_mask.resize((native, native), Image.Resampling.BILINEAR)],
                    strength=settings.strength,
                    steps=steps,
                    controlnet=settings.controlnet,
                )
                rendered = run(lora, subject.trigger_phrase)(
                    cfg, meter.stage("template_photo", len(config.seeds) * len(subjects))
                )
                image = _paste(image, rendered[0].image, crop, box, settings.mask)
                holder.setdefault("recipe", rendered[0].recipe)
                per_face.append(
                    {
                        "slot": subject.slot,
                        "face": list(box),
                        "identity_sha256": digest,
                        "adapters": [a.get("name") for a in rendered[0].recipe.get("adapters", [])],
                    }
                )
            item.image = image

        item_started = time.perf_counter()
        _stage(portrait, "template_photo", inpaint)
        entry = {
            "name": "template_photo",
            "photo_sha256": photo_sha,
            "strength": float(settings.strength),
            "steps": steps,
            "mask": asdict(settings.mask),
            "controlnet": settings.controlnet,
            "max_faces": len(subjects),
            "faces": len(faces),
            "per_face": per_face,
            "seconds": round(time.perf_counter() - item_started, 3),
        }
        recipe = template_photo_recipe(
            holder.get("recipe") or {},
            seed=seed,
            native=native,
            photo=photo,
            prepared=prepared,
            entry=entry,
            stages=stages,
        )
        recipe["prompt_template"] = config.prompt
        recipe["stages"][0]["identity"] = None
        recipe["subjects"] = [
            {"slot": s.slot, "trigger_phrase": s.trigger_phrase, "identity_sha256": digest, "face": list(box)}
            for s, digest, box in zip(subjects, digests, assigned, strict=True)
        ]
        portrait.recipe = recipe
        portraits.append(portrait)
    return portraits


def _is_template_photo(recipe: dict[str, Any]) -> bool:
    return recipe.get("mode") == "template_photo"


def more_like_me(recipe: dict[str, Any], *, step: float = 0.15, cap: float = 1.6) -> dict[str, Any]:
    """A group portrait's recipe one step more like its people: the same seed and scene, every face re-rendered
    with its person's LoRA one `step` stronger (at most `cap`). A scene's faces take their weight from the face
    pass's entry; a template photo's from the identity adapter of its recipe (engine.rendering.more_like_me).
    Unchanged at the cap (see :func:`can_go_more_like_me`); ``more_like_me_step`` counts the steps."""
    if _is_template_photo(recipe):
        return rendering_more_like_me(recipe, step=step, cap=cap)
    new = copy.deepcopy(recipe)
    entry = next((e for e in new.get("stages") or [] if isinstance(e, dict) and e.get("name") == "face_pass"), None)
    if entry is None or entry.get("identity_weight") is None:
        raise ValueError("this group portrait has no face pass to make more like its people")
    weight = float(entry["identity_weight"])
    raised = round(max(weight, min(weight + step, cap)), 4)
    if raised != weight:
        entry["identity_weight"] = raised
        new["more_like_me_step"] = int(recipe.get("more_like_me_step") or 0) + 1
    return new


def can_go_more_like_me(recipe: dict[str, Any], *, cap: float = 1.6) -> bool:
    """Whether :func:`more_like_me` would still change a group portrait's recipe."""
    try:
        return more_like_me(recipe, cap=cap) != recipe
    except (ValueError, KeyError, TypeError):
        return False
