"""Face checks for intake photos: one dominant face, large enough, inside the frame, sharp, well exposed.

Plain Python (no Django): takes a PIL image and a :class:`FaceRules`, returns a :class:`FaceReport`.
dlib's models come from the ``face_recognition_models`` package (they ship in its sdist and work offline):
the HOG frontal face detector, the 5-point shape predictor and the ResNet face recognition model (public domain;
the package's 68-point model, trained on a set that excludes commercial use, is refused: docs/licences.md). They
are loaded lazily, once per process.

Identity across a set
---------------------
Each accepted photo yields dlib's 128-d embedding of its main face. :func:`identity_outliers` compares every
embedding with the set's robust centre (the element-wise median, then the mean of the photos within
``max_distance`` of it) and flags those farther than ``max_distance`` ("looks like a different person").
Measured on ``shared/fixtures/faces`` (dlib 20.0.1, 1 jitter, embeddings taken on a crop around the face):
the four distinct photos of person A lie 0.34-0.44 from each other; with flips, crops, colour and contrast
changes of them (a 20-photo set, as in tests/engine/test_faces.py) all A-A pairs lie 0.02-0.45 apart and
0.19-0.27 from the robust centre (the partial crops and the 320x240 copy: 0.18-0.29). Person B lies
0.79-0.87 from every photo of A and 0.80 from the set's robust centre (person_b_02: 0.81). dlib's published
"same person" threshold, 0.6, sits in the gap between 0.29 and 0.79 with about 0.3 of margin on the A side
and 0.2 on the B side, so it is the default. With fewer than 3 photos there is
no majority to define the centre, so nothing is flagged.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from engine.licences import allowed_model_file

K = TypeVar("K", bound=Hashable)

#: Distance above which an embedding is "a different person" (see the module docstring).
DEFAULT_MAX_IDENTITY_DISTANCE = 0.6
#: Fewest photos needed before identity outliers are judged.
MIN_PHOTOS_FOR_IDENTITY = 3


@dataclass(frozen=True)
class FaceRules:
    """Thresholds of the face checks. Pixel sizes are at the photo's full resolution."""

    #: Longest side of the downscaled copy that the detector runs on (speed; boxes are mapped back).
    detect_max_side: int = 800
    #: If the detection copy's longest side is below this, the detector upsamples it once (finds small faces).
    upsample_below_side: int = 640
    #: A second face whose box area exceeds this fraction of the main face's rejects the photo.
    max_other_face_area_ratio: float = 0.25
    #: Smallest accepted side of the main face box (dlib's box spans roughly eyebrows to chin).
    min_face_px: int = 160
    #: The face box is grown by this fraction of its side on every side; if that leaves the frame, the face
    #: is "cut off" (dlib's box is tight, so this margin stands for forehead, hair and chin).
    cut_off_margin: float = 0.15
    #: The grey face crop is resized to this square before measuring sharpness, so the figure does not
    #: depend on the photo's resolution.
    sharpness_crop_px: int = 256
    #: Minimum variance of the Laplacian on that crop (brightness-normalised, see :func:`face_sharpness`).
    #: Measured on the fixtures' main faces: 33-414 (lowest: the 320x240 person_a_07_small, 33, and the group
    #: photos, 50-51); the same photos blurred with PIL GaussianBlur(radius=2): 1.4-14.6, radius 6: 1.0-3.0.
    #: 20 sits between the two groups.
    min_sharpness: float = 20.0
    #: Accepted range of the face crop's mean luminance (0-255). Fixtures measure 111-149; darkened to 15 %
    #: (ImageEnhance.Brightness 0.15) they measure 16-22.
    min_brightness: float = 60.0
    max_brightness: float = 210.0
    #: Luminance at or below / at or above which a pixel counts as clipped.
    clip_low: int = 8
    clip_high: int = 247
    #: Largest accepted fraction of clipped pixels (dark or bright, each on its own) in the face crop.
    max_clipped_fraction: float = 0.25
    #: The embedding is computed on a crop around the face, rescaled so the face box side is at most this.
    embedding_face_px: int = 300
    #: dlib's num_jitters for the embedding (1 = no jitter; higher is slower and slightly more stable).
    num_jitters: int = 1


@dataclass(frozen=True)
class FaceBox:
    """A face box in full-resolution pixel coordinates (right and bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)


@dataclass(frozen=True)
class FaceIssue:
    code: str
    message: str


@dataclass(frozen=True)
class FaceReport:
    """The verdict on one photo. ``ok`` is true when there are no issues."""

    issues: tuple[FaceIssue, ...]
    main_box: FaceBox | None = None
    boxes: tuple[FaceBox, ...] = ()
    sharpness: float | None = None
    brightness: float | None = None
    dark_fraction: float | None = None
    bright_fraction: float | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(issue.code for issue in self.issues)


# ---------------------------------------------------------------------------------------------- models


def _model_path(name: str) -> str:
    # Only the files whose licence allows commercial use (engine/licences.py, docs/licences.md): the
    # package also ships dlib's 68-point landmark model, trained on a set that excludes commercial use.
    if allowed_model_file("face_recognition_models", name) is None:
        raise RuntimeError(f"dlib model file {name!r} is not in the licence allow-list (engine/licences.py)")
    # The package's own helpers (pose_predictor_five_point_model_location() ...) import pkg_resources, which
    # setuptools >= 81 no longer ships; find the package folder without importing it instead.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed (pip install face_recognition_models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise RuntimeError(f"dlib model file missing: {path}")
    return str(path)


@functools.cache
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def _shape_predictor() -> Any:
    import dlib

    return dlib.shape_predictor(_model_path("shape_predictor_5_face_landmarks.dat"))


@functools.cache
def _face_encoder() -> Any:
    import dlib

    return dlib.face_recognition_model_v1(_model_path("dlib_face_recognition_resnet_model_v1.dat"))


# ---------------------------------------------------------------------------------------------- analysis


def detect_faces(image: Image.Image, rules: FaceRules = FaceRules()) -> list[FaceBox]:  # noqa: B008
    """Face boxes at full resolution, largest first, found on a downscaled copy of ``image``."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    scale = min(1.0, rules.detect_max_side / max(width, height))
    small = rgb
    if scale < 1.0:
        small = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    upsample = 1 if max(small.size) < rules.upsample_below_side else 0
    rects = _detector()(np.asarray(small), upsample)
    sx, sy = width / small.size[0], height / small.size[1]
    boxes = [
        FaceBox(
            left=round(r.left() * sx),
            top=round(r.top() * sy),
            right=round((r.right() + 1) * sx),
            bottom=round((r.bottom() + 1) * sy),
        )
        for r in rects
    ]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def _grey_crop(rgb: Image.Image, box: FaceBox) -> Image.Image:
    clipped = (max(box.left, 0), max(box.top, 0), min(box.right, rgb.width), min(box.bottom, rgb.height))
    return rgb.crop(clipped).convert("L")


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a 2-D grey array (a standard focus measure)."""
    g = grey.astype(np.float64)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def face_sharpness(rgb: Image.Image, box: FaceBox, rules: FaceRules = FaceRules()) -> float:  # noqa: B008
    """Variance of the Laplacian on the grey face crop, resized to a fixed square and scaled to a mean
    luminance of 128, so the figure depends neither on the resolution nor on the exposure (a dark photo is
    reported as badly exposed, not as blurry)."""
    side = rules.sharpness_crop_px
    crop = np.asarray(_grey_crop(rgb, box).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64)
    mean = float(crop.mean())
    if mean < 1.0:
        return 0.0
    return laplacian_variance(crop * (128.0 / mean))


def face_embedding(rgb: Image.Image, box: FaceBox, rules: FaceRules = FaceRules()) -> np.ndarray:  # noqa: B008
    """dlib's 128-d descriptor of the face in ``box``, computed on a rescaled crop around it."""
    import dlib

    pad = max(box.width, box.height)
    left, top = max(box.left - pad, 0), max(box.top - pad, 0)
    right, bottom = min(box.right + pad, rgb.width), min(box.bottom + pad, rgb.height)
    crop = rgb.crop((left, top, right, bottom))
    scale = min(1.0, rules.embedding_face_px / max(box.width, box.height, 1))
    if scale < 1.0:
        crop = crop.resize(
            (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.BILINEAR
        )
    rect = dlib.rectangle(
        round((box.left - left) * scale),
        round((box.top - top) * scale),
        round((box.right - left) * scale) - 1,
        round((box.bottom - top) * scale) - 1,
    )
    array = np.ascontiguousarray(np.asarray(crop))
    shape = _shape_predictor()(array, rect)
    descriptor = _face_encoder().compute_face_descriptor(array, shape, num_jitters=rules.num_jitters)
    return np.asarray(descriptor, dtype=np.float64)


def _is_cut_off(box: FaceBox, size: tuple[int, int], margin: float) -> bool:
    mx, my = box.width * margin, box.height * margin
    return box.left - mx < 0 or box.top - my < 0 or box.right + mx > size[0] or box.bottom + my > size[1]


def analyse_face(image: Image.Image, rules: FaceRules = FaceRules()) -> FaceReport:  # noqa: B008
    """Check one photo's face. Every failed check adds a :class:`FaceIssue` with a code and a human message.

    Codes: ``no_face``, ``several_faces``, ``face_too_small``, ``face_cut_off``, ``blurry``, ``badly_exposed``.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    boxes = detect_faces(rgb, rules)
    if not boxes:
        return FaceReport(
            issues=(
                FaceIssue(
                    "no_face",
                    "We couldn't find a face in this photo. Use a photo where your face is clearly visible, "
                    "looking towards the camera.",
                ),
            )
        )
    main = boxes[0]
    issues: list[FaceIssue] = []
    if any(other.area > rules.max_other_face_area_ratio * main.area for other in boxes[1:]):
        issues.append(
            FaceIssue(
                "several_faces",
                "Another person's face is in the photo. Use photos where only you can be seen clearly.",
            )
        )
    if min(main.width, main.height) < rules.min_face_px:
        issues.append(
            FaceIssue(
                "face_too_small",
                f"Your face is too small in this photo ({min(main.width, main.height)} px, at least "
                f"{rules.min_face_px} px needed). Use a closer or higher-resolution photo.",
            )
        )
    if _is_cut_off(main, rgb.size, rules.cut_off_margin):
        issues.append(
            FaceIssue(
                "face_cut_off",
                "Your face is cut off by the edge of the photo. Use a photo with your whole head in the frame.",
            )
        )

    grey = np.asarray(_grey_crop(rgb, main), dtype=np.float64)
    sharpness = face_sharpness(rgb, main, rules)
    brightness = float(grey.mean())
    dark = float((grey <= rules.clip_low).mean())
    bright = float((grey >= rules.clip_high).mean())
    if sharpness < rules.min_sharpness:
        issues.append(FaceIssue("blurry", "This photo is blurry around the face. Use a sharp, in-focus photo."))
    if brightness < rules.min_brightness or dark > rules.max_clipped_fraction:
        issues.append(FaceIssue("badly_exposed", "Your face is too dark in this photo. Use a photo with more light."))
    elif brightness > rules.max_brightness or bright > rules.max_clipped_fraction:
        issues.append(
            FaceIssue("badly_exposed", "Your face is overexposed in this photo. Use a photo with softer light.")
        )

    return FaceReport(
        issues=tuple(issues),
        main_box=main,
        boxes=tuple(boxes),
        sharpness=sharpness,
        brightness=brightness,
        dark_fraction=dark,
        bright_fraction=bright,
        embedding=face_embedding(rgb, main, rules),
    )


# ---------------------------------------------------------------------------------------------- identity


def robust_centre(
    embeddings: Sequence[np.ndarray], *, max_distance: float = DEFAULT_MAX_IDENTITY_DISTANCE
) -> np.ndarray:
    """The set's identity centre: the element-wise median, then the mean of the embeddings within
    ``max_distance`` of it (the median alone if none is)."""
    if not embeddings:
        raise ValueError("robust_centre needs at least one embedding")
    stack = np.stack([np.asarray(e, dtype=np.float64) for e in embeddings])
    median = np.median(stack, axis=0)
    inliers = stack[np.linalg.norm(stack - median, axis=1) <= max_distance]
    return inliers.mean(axis=0) if len(inliers) else median


def identity_distances(
    embeddings: Mapping[K, np.ndarray], *, max_distance: float = DEFAULT_MAX_IDENTITY_DISTANCE
) -> dict[K, float]:
    """Euclidean distance of every embedding to the set's robust centre."""
    if not embeddings:
        return {}
    centre = robust_centre(list(embeddings.values()), max_distance=max_distance)
    return {key: float(np.linalg.norm(np.asarray(e, dtype=np.float64) - centre)) for key, e in embeddings.items()}


def identity_outliers(
    embeddings: Mapping[K, np.ndarray], *, max_distance: float = DEFAULT_MAX_IDENTITY_DISTANCE
) -> dict[K, float]:
    """Keys whose embedding lies farther than ``max_distance`` from the set's robust centre, with that distance
    ("looks like a different person"). Needs at least 3 photos; with fewer, nothing is flagged."""
    if len(embeddings) < MIN_PHOTOS_FOR_IDENTITY:
        return {}
    distances = identity_distances(embeddings, max_distance=max_distance)
    return {key: d for key, d in distances.items() if d > max_distance}
