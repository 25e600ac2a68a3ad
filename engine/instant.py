"""Instant portraits (issue 17): a portrait from a client's photos before their digital double is trained, through a
training-free identity adapter (engine.identity_adapters: an IP-Adapter and its CLIP image encoder, loaded for the
render only, the cached pipeline's own attention processors restored after it).

The adapter is conditioned on one face: the largest face among the photos given (the set's accepted photos),
cropped square with context around it, as the face IP-Adapters were trained on. The portrait's recipe says it is
instant (``recipe["instant"]``), which adapter made it, at what scale, and the sha256 of the face crop (never a path
or the photo). No identity LoRA is involved; the prompt's ``{subject}`` says "a person". Whether the photos may
still be used (the set not purged) is the caller's to check: this module only sees images.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from PIL import Image

from engine import masks as masks_
from engine.checkpoints import BaseModelSpec
from engine.identity_adapters import AdapterConfig
from engine.rendering import CancelCheck, IdentityImage, PipelineCache, RenderConfig, RenderedImage, render

Box = tuple[int, int, int, int]
Detector = Callable[[Image.Image], list[Box]]
#: Context around the face in the crop the adapter sees (a fraction of the face's size on each side).
FACE_CONTEXT = 0.4
DEFAULT_SCALE = 0.7


def _detect(image: Image.Image) -> list[Box]:
    from engine.faces import detect_faces

    return [(b.left, b.top, b.right, b.bottom) for b in detect_faces(image)]


def face_crop(photos: Sequence[Image.Image], detector: Detector | None = None) -> Image.Image:
    """The largest face among `photos`, cropped square with FACE_CONTEXT around it; ValueError when none shows a
    face."""
    detect = detector or _detect
    best: tuple[int, Image.Image, Box] | None = None
    for photo in photos:
        rgb = photo.convert("RGB")
        for box in detect(rgb)[:1]:
            area = max(0, box[2] - box[0]) * max(0, box[3] - box[1])
            if best is None or area > best[0]:
                best = (area, rgb, box)
    if best is None:
        raise ValueError("None of the photos shows a face the instant portrait could be made from.")
    _, rgb, box = best
    crop = masks_.crop_box(box, masks_.MaskSettings(), rgb.size, context=FACE_CONTEXT)
    return rgb.crop(crop)


def render_instant(
    *,
    cache: PipelineCache,
    spec: BaseModelSpec,
    adapter: AdapterConfig,
    photos: Sequence[Image.Image],
    config: RenderConfig,
    scale: float = DEFAULT_SCALE,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    detector: Detector | None = None,
) -> list[RenderedImage]:
    """Instant portraits, one per seed of `config`, conditioned on the photos' largest face through `adapter`."""
    if adapter.adapter.family != spec.family:
        raise ValueError(
            f"{adapter.adapter.label} is for {adapter.adapter.family} models; {spec.display_name} is {spec.family}."
        )
    face = face_crop(photos, detector)
    cfg = copy.copy(config)
    cfg.identity_image = IdentityImage(
        key=adapter.key,
        source=adapter.source,
        weight_name=adapter.weight_name,
        image_encoder=adapter.image_encoder,
        image=face,
        scale=float(scale),
    )
    made = render(
        cache=cache,
        spec=spec,
        identity_lora=None,
        trigger_phrase="",
        config=cfg,
        progress=progress,
        should_cancel=should_cancel,
    )
    for item in made:
        item.recipe["instant"] = True
        item.recipe["identity_image"]["licence"] = adapter.adapter.licence
        if adapter.declared_licence:
            item.recipe["identity_image"]["declared_licence"] = adapter.declared_licence
    return made
