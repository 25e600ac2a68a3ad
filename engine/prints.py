"""Prints: the geometry of a crop on a print product, and the print-ready file a lab expects.

Plain Python (no Django). A print product is a paper size (millimetres, short side × long side), optionally with an
image ratio of its own (a square image with white margins on a 20×30 sheet); the print takes the portrait's
orientation (a landscape portrait is printed on the sheet turned). The client frames the crop with a zoom (1: the
largest box of the product's ratio that fits the portrait) and a position (0–1 across the room left on each axis),
so every crop the page can show is a valid one; the box is kept as fractions of the portrait.

The print-ready file is the crop, enlarged with Lanczos to the image area's size at :data:`PRINT_DPI`, placed on the
sheet (white margins when the product has a ratio of its own), as a baseline JPEG at quality 95 without chroma
subsampling, with its dots per inch and an embedded sRGB colour profile (what photo labs ask for).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image, ImageCms

PRINT_DPI = 300
MM_PER_INCH = 25.4
MAX_ZOOM = 4.0
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Sheet:
    """A product's paper and the image area on it, in millimetres, in the portrait's orientation."""

    width_mm: float
    height_mm: float
    image_width_mm: float
    image_height_mm: float

    @property
    def ratio(self) -> float:
        """The image area's width over its height."""
        return self.image_width_mm / self.image_height_mm

    def pixels(self, dpi: int) -> tuple[int, int]:
        """The sheet's size in pixels at `dpi`."""
        return _px(self.width_mm, dpi), _px(self.height_mm, dpi)

    def image_pixels(self, dpi: int) -> tuple[int, int]:
        """The image area's size in pixels at `dpi`."""
        return _px(self.image_width_mm, dpi), _px(self.image_height_mm, dpi)


@dataclass(frozen=True)
class Crop:
    """A box of the portrait, as fractions of its width and height."""

    x: float
    y: float
    w: float
    h: float

    def box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The box in pixels of an image of `size` (left, top, right, bottom)."""
        width, height = size
        left, top = round(self.x * width), round(self.y * height)
        right = min(width, max(left + 1, round((self.x + self.w) * width)))
        bottom = min(height, max(top + 1, round((self.y + self.h) * height)))
        return left, top, right, bottom

    def as_dict(self) -> dict[str, float]:
        return {"x": round(self.x, 6), "y": round(self.y, 6), "w": round(self.w, 6), "h": round(self.h, 6)}


def _px(mm: float, dpi: int) -> int:
    return max(1, round(mm / MM_PER_INCH * dpi))


def parse_ratio(text: str) -> Fraction | None:
    """ "4:5" → 4/5; empty → None. Raises ValueError for anything else (two positive whole numbers up to 100)."""
    text = (text or "").strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError("a ratio is two whole numbers, like 4:5")
    width, height = (int(p) for p in parts)
    if not (0 < width <= 100 and 0 < height <= 100):
        raise ValueError("each side of a ratio is 1 to 100")
    return Fraction(width, height)


def sheet(*, width_mm: float, height_mm: float, crop_ratio: str = "", landscape: bool = False) -> Sheet:
    """The sheet of a product (`width_mm` × `height_mm`, either order) for a portrait, turned when it is
    `landscape`; the image area is the whole sheet, or the largest box of `crop_ratio` (given for the upright
    sheet) centred on it."""
    short, long = sorted((float(width_mm), float(height_mm)))
    paper_w, paper_h = (long, short) if landscape else (short, long)
    ratio = parse_ratio(crop_ratio)
    if ratio is None:
        return Sheet(paper_w, paper_h, paper_w, paper_h)
    wanted = float(1 / ratio if landscape else ratio)  # the image area turns with the sheet
    if paper_w / paper_h > wanted:
        return Sheet(paper_w, paper_h, paper_h * wanted, paper_h)
    return Sheet(paper_w, paper_h, paper_w, paper_w / wanted)


def base_box(size: tuple[int, int], ratio: float) -> tuple[float, float]:
    """The largest box of `ratio` (width / height) inside an image of `size`, in pixels (zoom 1)."""
    width, height = size
    if width / height > ratio:
        return height * ratio, float(height)
    return float(width), width / ratio


def max_zoom(size: tuple[int, int], target: Sheet, min_dpi: int) -> float:
    """How far the client may zoom in and still have `min_dpi` pixels per inch on the print (below 1: the
    portrait is too small for the product at all), capped at :data:`MAX_ZOOM`."""
    box_w, _ = base_box(size, target.ratio)
    needed = target.image_width_mm / MM_PER_INCH * min_dpi
    return min(MAX_ZOOM, box_w / needed) if needed > 0 else MAX_ZOOM


def crop_for(size: tuple[int, int], target: Sheet, *, zoom: float = 1.0, x: float = 0.5, y: float = 0.5) -> Crop:
    """The crop the page's controls describe: `zoom` (1 or more) and the position `x`, `y` (0–1, clamped)."""
    zoom = max(1.0, float(zoom))
    x, y = (min(1.0, max(0.0, float(v))) for v in (x, y))
    width, height = size
    box_w, box_h = base_box(size, target.ratio)
    box_w, box_h = box_w / zoom, box_h / zoom
    left, top = (width - box_w) * x, (height - box_h) * y
    return Crop(left / width, top / height, box_w / width, box_h / height)


def dpi_of(size: tuple[int, int], crop: Crop, target: Sheet) -> float:
    """The portrait's own pixels per inch on the print, for this crop."""
    return crop.w * size[0] / (target.image_width_mm / MM_PER_INCH)


def srgb_profile() -> bytes:
    """An sRGB ICC profile (littleCMS's built-in one, through Pillow), to embed in print files."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def print_file(image: Image.Image, crop: Crop, target: Sheet, *, dpi: int = PRINT_DPI) -> bytes:
    """The print-ready JPEG of `image` cropped to `crop` on `target` at `dpi` (see the module's docstring)."""
    rgb = image.convert("RGB")
    area = rgb.crop(crop.box(rgb.size)).resize(target.image_pixels(dpi), Image.Resampling.LANCZOS)
    paper_size = target.pixels(dpi)
    if area.size != paper_size:
        paper = Image.new("RGB", paper_size, (255, 255, 255))
        paper.paste(area, ((paper_size[0] - area.width) // 2, (paper_size[1] - area.height) // 2))
        area = paper
    out = io.BytesIO()
    area.save(
        out, "JPEG", quality=JPEG_QUALITY, subsampling=0, dpi=(dpi, dpi), icc_profile=srgb_profile(), optimize=True
    )
    return out.getvalue()
