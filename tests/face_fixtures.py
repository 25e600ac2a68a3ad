"""Where the shared public-domain face photos are (../shared/fixtures/faces beside the project, see its SOURCE.md).

A clone made elsewhere (`git clone /work/main /tmp/x`) has no ../shared beside it: the folder is then looked for
beside the repository the clone came from (its `origin`, when that is a local path). `FACE_FIXTURES_DIR` names it
outright. Tests that need the photos fail (or skip, where they say so) when none of these has them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RELATIVE = Path("shared") / "fixtures" / "faces"


def _origin_parent() -> Path | None:
    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    url = url.removeprefix("file://")
    return Path(url).resolve().parent if url.startswith("/") else None


def find_faces() -> Path:
    """The first of $FACE_FIXTURES_DIR, ../shared/fixtures/faces, and the same beside the clone's origin, that
    exists; else the project-relative path (which then doesn't exist)."""
    candidates = [Path(os.environ["FACE_FIXTURES_DIR"])] if os.environ.get("FACE_FIXTURES_DIR") else []
    candidates.append(ROOT.parent / RELATIVE)
    origin = _origin_parent()
    if origin is not None:
        candidates.append(origin / RELATIVE)
    return next((path for path in candidates if path.is_dir()), ROOT.parent / RELATIVE)


FACES = find_faces()


PEOPLE = ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"]


def shots(name: str) -> dict[str, Any]:
    """Five different shots made from one fixture photo, as PIL images by label: original, mirrored, cropped,
    mirrored crop, tilted 8 degrees (the intake takes them as five photos: no near-duplicates)."""
    from PIL import Image, ImageOps

    with Image.open(FACES / name) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    w, h = image.size
    return {
        "orig": image,
        "flip": ImageOps.mirror(image),
        "crop": image.crop((w // 12, h // 20, w - w // 12, h - h // 10)),
        "cropflip": ImageOps.mirror(image.crop((w // 10, 0, w - w // 20, h - h // 8))),
        "tilt": image.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)),
    }


def build_set(folder: Path, long_side: int | None = None) -> list[Path]:
    """A 20-photo set of person A that the intake accepts whole: the five `shots` of each of person A's four
    photos, saved as JPEG files in `folder`. `long_side` resizes each so that its longer side has that many
    pixels (4032: a 12 MP phone photo)."""
    from PIL import Image

    paths = []
    for name in PEOPLE:
        for label, variant in shots(name).items():
            if long_side:
                scale = long_side / max(variant.size)
                size = (round(variant.width * scale), round(variant.height * scale))
                variant = variant.resize(size, Image.Resampling.LANCZOS)
            path = folder / f"{Path(name).stem}-{label}.jpg"
            variant.save(path, format="JPEG", quality=92)
            paths.append(path)
    return paths
