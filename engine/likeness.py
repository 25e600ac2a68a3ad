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

The likeness report
-------------------
:func:`likeness_report` judges a set of portraits against photos of the client that the double was **not**
trained on (held-out photos), so a double that merely reproduces its training photos does not score itself.
It takes embeddings only (``None`` where a portrait has no face; :func:`main_face_embedding` makes them) and
reports per portrait the distance and likeness to the **held-out centroid** (the robust centre of the held-out
embeddings), the nearest training photo and its distance, and the **copy guard**: a portrait is a ``copy`` when

    nearest_training_distance < CopyGuard.max_distance (0.15)
    and nearest_training_distance < CopyGuard.ratio (0.5) * held-out distance

(with no held-out centroid, the first condition alone). Measured on ``shared/fixtures/faces`` (dlib 20.0.1,
training = the five shots of two of person A's photos, held-out = those of the other two, three such splits):
a training photo itself lies 0.00 from it, a 5 % crop, a JPEG at quality 40, a 1.2x brightening or a half-size
copy 0.02-0.072 (the 320x240 copy person_a_07_small: 0.055; the RGBA copy person_a_08: 0.019), at a ratio of
0.00-0.29 to the held-out distance (0.25-0.38); a *different* photo of person A lies 0.325-0.37 from the
nearest training photo (ratio 1.46-1.92: the held-out photos are closer); the narrow crops person_a_05/06 of a
training photo 0.22-0.26 (ratio 0.64-0.82: not copies, but close); person B 0.79-0.82 (ratio about 1.0).
0.15 sits between the light edits (at most 0.072) and the narrow crops (from 0.22) with a margin of 2x on the
copy side; the ratio 0.5 sits between 0.29 and 0.64. The absolute bound keeps a portrait far from everyone
(another person) from being called a copy just because the held-out centroid is farther still; the ratio
keeps a portrait that is as close to the held-out photos as to its nearest training photo from being called
one. :class:`LikenessSummary` (:func:`summarise_likeness`, in the light :mod:`engine.likeness_summary`, which the
web pages import without numpy or dlib) gives the set's figures: how many portraits, how many
have a likeness, the median and mean likeness and the share at or above :data:`LIKENESS_LINE` (50, dlib's 0.6:
"looks like the client"), shared with the double's page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from engine.faces import (
    DEFAULT_MAX_IDENTITY_DISTANCE,
    FaceBox,
    FaceRules,
    detect_faces,
    face_embedding,
    face_sharpness,
    robust_centre,
)
from engine.likeness_summary import LIKENESS_LINE, LikenessSummary, summarise_likeness

__all__ = [
    "LIKENESS_LINE",
    "ZERO_LIKENESS_DISTANCE",
    "CopyGuard",
    "ImageScore",
    "LikenessReport",
    "LikenessSummary",
    "PortraitLikeness",
    "identity_centroid",
    "likeness_from_distance",
    "likeness_report",
    "main_face_embedding",
    "rank",
    "score_image",
    "summarise_likeness",
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
    #: A group portrait's faces (score_group_image): per slot its face box, likeness and distance.
    per_face: list[dict[str, Any]] = field(default_factory=list)

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


def _technical(rgb: Image.Image, face: FaceBox, rules: FaceRules) -> tuple[float, float, list[str]]:
    """One face's sharpness and brightness, and the flags they raise ("blurry", "badly_exposed")."""
    clipped = (max(face.left, 0), max(face.top, 0), min(face.right, rgb.width), min(face.bottom, rgb.height))
    grey = np.asarray(rgb.crop(clipped).convert("L"), dtype=np.float64)
    sharpness = face_sharpness(rgb, face, rules)
    brightness = float(grey.mean()) if grey.size else 0.0
    flags = []
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
    return sharpness, brightness, flags


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

    sharpness, brightness, technical = _technical(rgb, main, rules)
    flags.extend(technical)
    return ImageScore(
        likeness=likeness,
        faces=len(boxes),
        sharpness=sharpness,
        brightness=brightness,
        flags=flags,
        distance=distance,
    )


def _overlap(a: Sequence[int], b: FaceBox) -> float:
    """Intersection over union of box `a` (left, top, right, bottom) and face `b`."""
    left, top = max(a[0], b.left), max(a[1], b.top)
    right, bottom = min(a[2], b.right), min(a[3], b.bottom)
    inter = max(0, right - left) * max(0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + b.area - inter
    return inter / union if union > 0 else 0.0


#: A slot's face is the detected face overlapping its box (from the group render's recipe) at least this much.
GROUP_FACE_MIN_OVERLAP = 0.3


def score_group_image(
    image: Image.Image,
    slots: Sequence[tuple[Sequence[int], np.ndarray | None]],
    *,
    min_likeness: float = 50.0,
    rules: FaceRules = FaceRules(),  # noqa: B008
) -> ImageScore:
    """Score a group portrait (engine.group): each slot's face, the detected face that best overlaps the slot's
    box (output pixels, from the recipe's `subjects`), against **that person's** centroid. The portrait's
    likeness is its **weakest** face's (a family portrait is as good as its least recognisable member), so
    :func:`rank` ranks groups by their weakest face. Flags: "no_face" when a slot's face isn't found,
    "low_likeness" when the weakest face is below `min_likeness`, "blurry" / "badly_exposed" from the faces'
    worst; several faces are expected here (no "several_faces"). `per_face` gives each slot's figures."""
    rgb = _rgb(image)
    found = detect_faces(rgb, rules)
    per_face: list[dict[str, Any]] = []
    flags: list[str] = []
    likenesses: list[float] = []
    sharpness: list[float] = []
    brightness: list[float] = []
    for slot, (box, centroid) in enumerate(slots, start=1):
        best = max(found, key=lambda face: _overlap(box, face), default=None)
        if best is None or _overlap(box, best) < GROUP_FACE_MIN_OVERLAP:
            per_face.append({"slot": slot, "box": list(box), "likeness": None, "distance": None})
            if "no_face" not in flags:
                flags.append("no_face")
            continue
        likeness = distance = None
        if centroid is not None:
            embedding = face_embedding(rgb, best, rules)
            distance = float(np.linalg.norm(embedding - np.asarray(centroid, dtype=np.float64)))
            likeness = likeness_from_distance(distance)
            likenesses.append(likeness)
        face_sharp, face_bright, technical = _technical(rgb, best, rules)
        sharpness.append(face_sharp)
        brightness.append(face_bright)
        flags.extend(flag for flag in technical if flag not in flags)
        per_face.append(
            {
                "slot": slot,
                "box": [best.left, best.top, best.right, best.bottom],
                "likeness": None if likeness is None else round(likeness, 1),
                "distance": None if distance is None else round(distance, 4),
            }
        )
    weakest = min(likenesses) if likenesses and len(likenesses) == len(slots) else None
    if weakest is not None and weakest < min_likeness:
        flags.append("low_likeness")
    return ImageScore(
        likeness=weakest,
        faces=len(found),
        sharpness=min(sharpness) if sharpness else None,
        brightness=min(brightness) if brightness else None,
        flags=sorted(flags, key=lambda f: FLAG_SEVERITY.index(f) if f in FLAG_SEVERITY else len(FLAG_SEVERITY)),
        distance=max((f["distance"] for f in per_face if f["distance"] is not None), default=None),
        per_face=per_face,
    )


def rank(scores: Sequence[ImageScore]) -> list[int]:
    """Indices of ``scores`` best first: unflagged portraits by likeness (then sharpness), flagged ones last
    (the least severe flag first). Ties keep the input order."""
    return sorted(range(len(scores)), key=lambda i: (scores[i].sort_key(), i))


# ---------------------------------------------------------------------------------------------- the likeness report


def main_face_embedding(
    image: Image.Image,
    *,
    rules: FaceRules = FaceRules(),  # noqa: B008
) -> np.ndarray | None:
    """dlib's 128-d embedding of the image's main (largest) face, ``None`` when no face is found."""
    rgb = _rgb(image)
    boxes = detect_faces(rgb, rules)
    return face_embedding(rgb, boxes[0], rules) if boxes else None


@dataclass(frozen=True)
class CopyGuard:
    """When a portrait counts as a copy of a training photo (see the module docstring for the measurements):
    its nearest training photo is closer than ``max_distance`` **and** closer than ``ratio`` times its distance to
    the held-out centroid (without a held-out centroid, the first condition alone)."""

    ratio: float = 0.5
    max_distance: float = 0.15

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and self.max_distance > 0):
            raise ValueError("ratio and max_distance must be positive")

    def is_copy(self, nearest_training: float | None, heldout: float | None) -> bool:
        if nearest_training is None or nearest_training >= self.max_distance:
            return False
        return heldout is None or nearest_training < self.ratio * heldout


@dataclass(frozen=True)
class PortraitLikeness:
    """One portrait in a :class:`LikenessReport`. Without a face every figure is ``None`` and it is no copy;
    without held-out embeddings ``heldout_distance`` and ``likeness`` are ``None``. ``nearest_training`` is the
    index of the nearest training photo (in the order given)."""

    index: int
    face: bool
    heldout_distance: float | None
    likeness: float | None
    nearest_training: int | None
    nearest_training_distance: float | None
    copy: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LikenessReport:
    """Per-portrait figures and the set's: ``summary`` (likeness against the held-out centroid), ``faces`` (of
    ``summary.count``), ``copies``, how many held-out and training photos had a face (``heldout_photos``,
    ``training_photos``) and the copy rule used."""

    portraits: tuple[PortraitLikeness, ...]
    summary: LikenessSummary
    faces: int
    copies: int
    heldout_photos: int
    training_photos: int
    guard: CopyGuard

    def as_dict(self) -> dict[str, Any]:
        return {
            "portraits": [p.as_dict() for p in self.portraits],
            "summary": self.summary.as_dict(),
            "faces": self.faces,
            "copies": self.copies,
            "heldout_photos": self.heldout_photos,
            "training_photos": self.training_photos,
            "guard": asdict(self.guard),
        }


def _stack(embeddings: Sequence[np.ndarray | None], what: str) -> np.ndarray | None:
    present = [np.asarray(e, dtype=np.float64) for e in embeddings if e is not None]
    if not present:
        return None
    if any(e.ndim != 1 or e.shape != present[0].shape for e in present):
        raise ValueError(f"{what} embeddings must be 1-D vectors of one length")
    return np.stack(present)


def likeness_report(
    portraits: Sequence[np.ndarray | None],
    heldout: Sequence[np.ndarray | None],
    training: Sequence[np.ndarray | None],
    *,
    guard: CopyGuard = CopyGuard(),  # noqa: B008
    line: float = LIKENESS_LINE,
) -> LikenessReport:
    """Judge portraits (their face embeddings, ``None`` without a face) against the client's held-out photos and
    the photos the double was trained on (see the module docstring): likeness to the held-out centroid, nearest
    training photo, copy guard, and the set's :class:`LikenessSummary`. Pure: no image is read here."""
    heldout_stack = _stack(heldout, "held-out")
    training_stack = _stack(training, "training")
    centre = robust_centre(list(heldout_stack)) if heldout_stack is not None else None
    # indices of the training photos that have a face, so nearest_training refers to the caller's order
    training_index = [i for i, e in enumerate(training) if e is not None]
    rows: list[PortraitLikeness] = []
    for index, embedding in enumerate(portraits):
        if embedding is None:
            rows.append(PortraitLikeness(index, False, None, None, None, None, False))
            continue
        vector = np.asarray(embedding, dtype=np.float64)
        heldout_distance = likeness = None
        if centre is not None:
            if vector.shape != centre.shape:
                raise ValueError("portrait and held-out embeddings differ in length")
            heldout_distance = float(np.linalg.norm(vector - centre))
            likeness = likeness_from_distance(heldout_distance)
        nearest = nearest_distance = None
        if training_stack is not None:
            if vector.shape != training_stack.shape[1:]:
                raise ValueError("portrait and training embeddings differ in length")
            distances = np.linalg.norm(training_stack - vector, axis=1)
            position = int(np.argmin(distances))
            nearest, nearest_distance = training_index[position], float(distances[position])
        rows.append(
            PortraitLikeness(
                index=index,
                face=True,
                heldout_distance=heldout_distance,
                likeness=likeness,
                nearest_training=nearest,
                nearest_training_distance=nearest_distance,
                copy=guard.is_copy(nearest_distance, heldout_distance),
            )
        )
    return LikenessReport(
        portraits=tuple(rows),
        summary=summarise_likeness((row.likeness for row in rows), line=line),
        faces=sum(1 for row in rows if row.face),
        copies=sum(1 for row in rows if row.copy),
        heldout_photos=0 if heldout_stack is None else len(heldout_stack),
        training_photos=0 if training_stack is None else len(training_stack),
        guard=guard,
    )
