"""Watermarked previews of portraits: the studio's text tiled diagonally over the image, semi-transparent.

Plain Pillow (no Django, no torch): the render job calls :func:`watermark` on each portrait before storing its
preview. The text is drawn white with a dark outline (readable on light and dark images) at `opacity`, in rows
rotated by `angle` degrees that cover the whole image, so cropping a corner never removes it. The size of the text
follows the image (a tenth of its shorter side, at least 10 px), so small previews carry it too.
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

DEFAULT_OPACITY = 0.35
DEFAULT_ANGLE = 30.0
MAX_TEXT_CHARS = 60


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled FreeType font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def watermark(
    image: Image.Image,
    text: str,
    *,
    max_side: int | None = 1024,
    opacity: float = DEFAULT_OPACITY,
    angle: float = DEFAULT_ANGLE,
) -> Image.Image:
    """An RGB copy of `image` (downscaled so its longer side is at most `max_side`) with `text` tiled
    diagonally over it at `opacity` (0-1)."""
    base = image.convert("RGB")
    if max_side and max(base.size) > max_side:
        base = base.copy()
        base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    text = " ".join((text or "").split())[:MAX_TEXT_CHARS] or "Preview"
    width, height = base.size
    size = max(10, round(min(width, height) / 10))
    font = _font(size)
    stroke = max(1, size // 12)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    text_w, text_h = max(1, right - left), max(1, bottom - top)
    gap_x, gap_y = max(size, text_w // 3), max(size, text_h * 2)

    # Draw the rows on a square layer large enough to cover the image at any angle, rotate it, crop the middle.
    side = int(math.hypot(width, height)) + 2 * (text_w + gap_x)
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    alpha = max(0, min(255, round(255 * opacity)))
    for row, y in enumerate(range(-text_h, side, text_h + gap_y)):
        shift = (row % 2) * (text_w + gap_x) // 2  # brick pattern
        for x in range(-text_w + shift - (text_w + gap_x), side, text_w + gap_x):
            draw.text(
                (x - left, y - top),
                text,
                font=font,
                fill=(255, 255, 255, alpha),
                stroke_width=stroke,
                stroke_fill=(0, 0, 0, alpha),
            )
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC)
    offset_x, offset_y = (side - width) // 2, (side - height) // 2
    layer = layer.crop((offset_x, offset_y, offset_x + width, offset_y + height))
    out = base.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")
