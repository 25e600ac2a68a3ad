"""Likeness of rendered portraits to a digital double, and their ranking.

Plain Python (no Django). Faces are found and described with dlib through :mod:`engine.faces`
(HOG detector, 128-d ResNet embedding). A double's identity is the robust centre of its training photos'
embeddings (:func:`identity_centroid`, the same centre the intake uses to spot "a different person").

The likeness scale (0-100)
--------------------------
Likeness is a linear, decreasing function of the Euclidean distance ``d`` between the portrait's face
embedding and the identity centroid (:func:`likeness_from_distance`)::

    likeness = 100 * (1 - d / 1.2), clipped to 0..100

so ``d = 0`` (the centroid itself) scores 100, dlib's published "same person" threshold ``d = 0.6`` scores 50,
and ``d >= 1.2`` (twice the threshold: clearly someone else) scores 0. Above 50 means "dlib would call this the
same person". On the project's fixtures (see faces.py) photos of person A lie 0.19-0.29 from A's centre
(likeness 76-84) and person B lies about 0.80 from it (likeness about 33). The scale is monotone, so ranking by
likeness is ranking by distance.

Flags
-----
``no_face`` (no face found: likeness unknown), ``several_faces`` (a second face at least a quarter the size
of the main one), ``low_likeness`` (below ``min_likeness``, 50 by default: dlib's threshold), ``blurry`` and
``badly_exposed`` (the intake's sharpness and exposure limits, :class:`~engine.faces.FaceRules`,
measured on the main face). :func:`rank` puts unflagged portraits first, best likeness first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.faces import (
    DEFAULT_MAX_IDENTITY_DISTANCE,
    FaceRules,
    detect_faces,
    face_embedding,
    face_sharpness,
    robust_centre,
)

__all__ = [
    "ZERO_LIKENESS_DISTANCE",
    "ImageScore",
    "identity_centroid",
    "likeness_from_distance",
    "rank",
    "score_image",
]

#: Distance at and beyond which likeness is 0 (twice dlib's same-person threshold).
ZERO_LIKENESS_DISTANCE = 2 * DEFAULT_MAX_IDENTITY_DISTANCE

#: Flags in order of severity (worst first); the order decides which flagged portrait ranks lower.
FLAG_SEVERITY = ("no_face", "several_faces", "low_likeness", "blurry", "badly_exposed")


def likeness_from_distance(distance: float) -> float:
    """Likeness 0-100 from an embedding distance: 100 at 0, 50 at dlib's threshold 0.6, 0 at 1.2 and beyond,
    linear in between (see the module docstring). Negative or NaN distances are refused."""
    if not distance >= 0.0:  # also catches NaN
        raise ValueError(f"distance must be >= 0, got {distance!r}")
    return float(np.clip(100.0 * (1.0 - distance / ZERO_LIKENESS_DISTANCE), 0.0, 100.0))


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def identity_centroid(
    images: Sequence[Image.Image],
    *,
    rules: FaceRules = FaceRules(),  # noqa: B008
) -> np.ndarray | None:
    """The robust centre (:func:`~engine.faces.robust_centre`) of the 128-d embeddings of each
    image's main (largest) face; images without a face are skipped. ``None`` when no image has a face."""
    embeddings = []
    for image in images:
        rgb = _rgb(image)
        boxes = detect_faces(rgb, rules)
        if boxes:
            embeddings.append(face_embedding(rgb, boxes[0], rules))
    if not embeddings:
        return None
    return robust_centre(embeddings)


@dataclass
class ImageScore:
    """How one portrait scores. ``likeness`` is ``None`` when there is no face or no centroid to compare with;
    ``distance`` is the raw embedding distance behind it."""

    likeness: float | None
    faces: int
    sharpness: float | None
    brightness: float | None
    flags: list[str] = field(default_factory=list)
    distance: float | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def sort_key(self) -> tuple[int, int, float, float]:
        """Ascending order = best first: unflagged before flagged, then the mildest worst flag, then higher
        likeness (unknown counts as -1), then sharper."""
        worst = min(
            (FLAG_SEVERITY.index(f) if f in FLAG_SEVERITY else len(FLAG_SEVERITY) for f in self.flags), default=-1
        )
        severity = len(FLAG_SEVERITY) - worst if self.flags else 0
        likeness = self.likeness if self.likeness is not None else -1.0
        return (int(self.flagged), severity, -likeness, -(self.sharpness or 0.0))


def score_image(
    image: Image.Image,
    centroid: np.ndarray | None,
    *,
    min_likeness: float = 50.0,
    rules: FaceRules = FaceRules(),  # noqa: B008
) -> ImageScore:
    """Score one rendered portrait against a double's identity centroid (see the module docstring for the
    scale and the flags). With ``centroid=None`` only the face count and the technical checks are made."""
    rgb = _rgb(image)
    boxes = detect_faces(rgb, rules)
    if not boxes:
        return ImageScore(likeness=None, faces=0, sharpness=None, brightness=None, flags=["no_face"])
    main = boxes[0]
    flags: list[str] = []
    if any(other.area > rules.max_other_face_area_ratio * main.area for other in boxes[1:]):
        flags.append("several_faces")

    likeness: float | None = None
    distance: float | None = None
    if centroid is not None:
        embedding = face_embedding(rgb, main, rules)
        distance = float(np.linalg.norm(embedding - np.asarray(centroid, dtype=np.float64)))
        likeness = likeness_from_distance(distance)
        if likeness < min_likeness:
            flags.append("low_likeness")

    clipped = (max(main.left, 0), max(main.top, 0), min(main.right, rgb.width), min(main.bottom, rgb.height))
    grey = np.asarray(rgb.crop(clipped).convert("L"), dtype=np.float64)
    sharpness = face_sharpness(rgb, main, rules)
    brightness = float(grey.mean()) if grey.size else 0.0
    if sharpness < rules.min_sharpness:
        flags.append("blurry")
    dark = float((grey <= rules.clip_low).mean()) if grey.size else 1.0
    bright = float((grey >= rules.clip_high).mean()) if grey.size else 0.0
    if (
        not rules.min_brightness <= brightness <= rules.max_brightness
        or dark > rules.max_clipped_fraction
        or bright > rules.max_clipped_fraction
    ):
        flags.append("badly_exposed")
    return ImageScore(
        likeness=likeness,
        faces=len(boxes),
        sharpness=sharpness,
        brightness=brightness,
        flags=flags,
        distance=distance,
    )


def rank(scores: Sequence[ImageScore]) -> list[int]:
    """Indices of ``scores`` best first: unflagged portraits by likeness (then sharpness), flagged ones last
    (the least severe flag first). Ties keep the input order."""
    return sorted(range(len(scores)), key=lambda i: (scores[i].sort_key(), i))
