"""Soft face masks: where a face pass or a template photo's inpainting may change pixels, and the compositing
that keeps every other pixel exactly as it was.

Plain Python (no Django, no torch). A face box (dlib's, tight: eyebrows to chin) is grown by ``margin`` (a
fraction of the box's larger side, on every side: forehead, hair, chin, ears) into the *core*; the mask is 1 on
the ellipse inscribed in the core and falls smoothly to 0 over ``feather`` (again a fraction of the box's larger
side) outside it; it is exactly 0 farther than the feather from the core's rectangle, so

    a pixel farther than ``margin + feather`` (in face-box sides) from every regenerated face box is never
    touched: :func:`composite` gives it back bit for bit (``out = base * (1 - m) + new * m`` with ``m == 0``).

:func:`support_box` is that outer rectangle (what tests and the designer's overlay check against),
:func:`crop_box` the square a face is re-rendered in (the support plus some context, so the model sees the
head's surroundings), and :func:`overlay` draws the mask over a photo for the photographer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), in pixels


@dataclass(frozen=True)
class MaskSettings:
    """`margin`: the face box is grown by this fraction of its larger side on every side (0-1). `feather`: the
    soft edge's width outside that, as a fraction of the face box's larger side (0-1; 0 is a hard edge)."""

    margin: float = 0.3
    feather: float = 0.15

    def __post_init__(self) -> None:
        for name in ("margin", "feather"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= float(value) <= 1.0):
                raise ValueError(f"mask {name} must be a number from 0 to 1 (a fraction of the face's size)")


def _side(box: Box) -> int:
    return max(box[2] - box[0], box[3] - box[1], 1)


def core_box(box: Box, settings: MaskSettings) -> tuple[float, float, float, float]:
    """The face box grown by the margin (not clipped: the ellipse may leave the frame)."""
    grow = settings.margin * _side(box)
    return (box[0] - grow, box[1] - grow, box[2] + grow, box[3] + grow)


def feather_px(box: Box, settings: MaskSettings) -> float:
    return settings.feather * _side(box)


def support_box(box: Box, settings: MaskSettings, size: tuple[int, int]) -> Box:
    """The rectangle outside which the mask of `box` is exactly 0, clipped to the image `size` (width, height)."""
    left, top, right, bottom = core_box(box, settings)
    pad = feather_px(box, settings)
    return (
        max(0, int(np.floor(left - pad))),
        max(0, int(np.floor(top - pad))),
        min(size[0], int(np.ceil(right + pad))),
        min(size[1], int(np.ceil(bottom + pad))),
    )


def face_mask(size: tuple[int, int], boxes: Sequence[Box], settings: MaskSettings = MaskSettings()) -> np.ndarray:  # noqa: B008
    """The soft mask of `boxes` on an image of `size` (width, height): float32 (height, width) in 0..1, the
    maximum over the faces. See the module notes for its shape and the guarantee outside it."""
    width, height = size
    mask = np.zeros((height, width), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    for box in boxes:
        left, top, right, bottom = core_box(box, settings)
        feather = feather_px(box, settings)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        a, b = max((right - left) / 2, 1.0), max((bottom - top) / 2, 1.0)
        radius = np.sqrt(((xs - cx) / a) ** 2 + ((ys - cy) / b) ** 2)
        outside = np.maximum(radius - 1.0, 0.0) * min(a, b)  # about the distance outside the ellipse, in px
        if feather > 0:
            soft = np.clip(1.0 - outside / feather, 0.0, 1.0)
            soft = soft * soft * (3.0 - 2.0 * soft)  # smoothstep: no visible seam at either edge
        else:
            soft = (outside <= 0).astype(np.float32)
        # Exactly 0 beyond the feather around the core's rectangle (the documented guarantee).
        dx = np.maximum(np.maximum(left - xs, xs - right), 0.0)
        dy = np.maximum(np.maximum(top - ys, ys - bottom), 0.0)
        soft = np.where(np.hypot(dx, dy) < max(feather, 0.5), soft, 0.0)
        np.maximum(mask, soft.astype(np.float32), out=mask)
    return mask


def crop_box(box: Box, settings: MaskSettings, size: tuple[int, int], context: float = 0.25) -> Box:
    """The square (as far as the image allows) in which the face of `box` is re-rendered: the mask's support
    plus `context` × the face's side on every side, clipped to the image."""
    left, top, right, bottom = support_box(box, settings, (10**9, 10**9))
    left, top = min(left, box[0]), min(top, box[1])
    extra = context * _side(box)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = max(right - left, bottom - top) / 2 + extra
    width, height = size
    half = min(half, width / 2, height / 2)
    x0 = int(round(min(max(cx - half, 0), width - 2 * half)))
    y0 = int(round(min(max(cy - half, 0), height - 2 * half)))
    side = int(round(2 * half))
    return (x0, y0, min(width, x0 + side), min(height, y0 + side))


def composite(base: Image.Image, generated: Image.Image, mask: np.ndarray) -> Image.Image:
    """`generated` over `base` through `mask` (same size): ``base * (1 - m) + generated * m``, rounded. Where
    the mask is 0 the result is `base`'s pixel, bit for bit."""
    if base.size != generated.size or mask.shape != (base.height, base.width):
        raise ValueError("composite: the base, the generated image and the mask must have the same size")
    old = np.asarray(base.convert("RGB"), dtype=np.float32)
    new = np.asarray(generated.convert("RGB"), dtype=np.float32)
    weight = mask[:, :, None]
    out = np.where(weight > 0, old * (1.0 - weight) + new * weight, old)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def overlay(image: Image.Image, boxes: Sequence[Box], settings: MaskSettings = MaskSettings()) -> Image.Image:  # noqa: B008
    """What the photographer sees: `image` with the mask tinted in (the regenerated region) and each face's
    detected box outlined."""
    rgb = image.convert("RGB")
    mask = face_mask(rgb.size, boxes, settings)
    tint = np.array([255, 64, 160], dtype=np.float32)
    pixels = np.asarray(rgb, dtype=np.float32)
    mixed = pixels * (1 - 0.55 * mask[:, :, None]) + tint * 0.55 * mask[:, :, None]
    out = Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(out)
    line = max(2, round(max(rgb.size) / 400))
    for box in boxes:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=(255, 255, 255), width=line)
    return out
