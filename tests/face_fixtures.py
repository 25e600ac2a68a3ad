"""Where the shared public-domain face photos are (../shared/fixtures/faces beside the project, see its SOURCE.md).

A clone made elsewhere (`git clone /work/main /tmp/x`) has no ../shared beside it: the folder is then looked for
beside the repository the clone came from (its `origin`, when that is a local path). `FACE_FIXTURES_DIR` names it
outright. Tests that need the photos fail (or skip, where they say so) when none of these has them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
