"""Print-file benchmark: the project's print-ready file (engine.prints.print_file: crop, Lanczos enlargement to the
product's size at 300 dpi, baseline JPEG at quality 95 without chroma subsampling, dpi and an embedded sRGB
profile, optimised Huffman tables) against a plain baseline (the same crop, a bicubic resize to the same size, a
default JPEG save), for a 1024 × 1536 portrait on a 20×30 cm print (2362 × 3543 px), in one run.

    python bench/prints.py [--rounds 5] [--size 1024x1536] [--print-mm 200x300]

Prints each way's median seconds and file size, and one summary line with the ratios (time and bytes).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from engine import prints  # noqa: E402


def _portrait(size: tuple[int, int]) -> Image.Image:
    """A portrait-like image with detail everywhere (a smooth gradient compresses unrealistically well)."""
    noise = Image.effect_noise(size, 40).convert("L")
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))


def _baseline(image: Image.Image, crop: prints.Crop, target: prints.Sheet) -> bytes:
    out = io.BytesIO()
    image.crop(crop.box(image.size)).resize(target.pixels(prints.PRINT_DPI), Image.Resampling.BICUBIC).save(out, "JPEG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", default="1024x1536")
    parser.add_argument("--print-mm", default="200x300")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    width_mm, height_mm = (int(v) for v in args.print_mm.split("x"))
    image = _portrait(size)  # type: ignore[arg-type]
    target = prints.sheet(width_mm=width_mm, height_mm=height_mm, landscape=size[0] > size[1])
    crop = prints.crop_for(image.size, target, zoom=1.0)
    ways = {
        "project": lambda: prints.print_file(image, crop, target),
        "baseline": lambda: _baseline(image, crop, target),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):  # interleaved: the machine's noise falls on both alike
        for name, make in ways.items():
            started = time.perf_counter()
            data = make()
            times[name].append(time.perf_counter() - started)
            sizes[name] = len(data)
    with Image.open(io.BytesIO(prints.print_file(image, crop, target))) as made:
        pixels, dpi = made.size, tuple(round(v) for v in made.info["dpi"])
    for name in ways:
        print(f"{name}: median {statistics.median(times[name]):.3f} s, {sizes[name] / 1e6:.2f} MB")
    project, baseline = (statistics.median(times[n]) for n in ("project", "baseline"))
    print(
        f"prints: {size[0]}x{size[1]} portrait -> {pixels[0]}x{pixels[1]} px at {dpi[0]} dpi, sRGB: "
        f"project {project:.3f} s vs plain {baseline:.3f} s = x{project / baseline:.2f} time, "
        f"x{sizes['project'] / sizes['baseline']:.2f} bytes ({args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
