"""Pose from a photo: the OpenPose skeleton image that the pose ControlNet takes, from any photo of a person.

Plain Python (no Django). :func:`pose_control_image` is the entry point: an image that already is an OpenPose
skeleton (:func:`is_pose_skeleton`) is returned as it is, any other image is turned into its skeleton
(:func:`pose_skeleton`), or :class:`PoseNotFound` (a ``ValueError`` with a message for the photographer) is
raised when no person is found.

Detection: MediaPipe's BlazePose (``mediapipe.solutions.pose``, static-image mode), 33 landmarks mapped to
the 18 OpenPose (COCO) keypoints that ControlNet's OpenPose models were trained on (:data:`BLAZEPOSE_TO_OPENPOSE`;
the neck is the shoulders' midpoint), drawn like controlnet_aux's ``draw_bodypose`` (:func:`draw_bodypose`: the
same limbs and 18 colours, limbs as ellipses at 60 % of their colour, joints as full-colour discs, on black, at
the photo's size) with PIL only.

Licences (docs/licences.md, engine/licences.py's ``mediapipe-blazepose`` row):

- ``mediapipe`` 0.10.21 (Google, Apache-2.0) ships the two BlazePose models it runs here inside its wheel:
  ``mediapipe/modules/pose_detection/pose_detection.tflite`` and
  ``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` (Apache-2.0, BlazePose GHUM 3D model card).
  Nothing is downloaded: mediapipe downloads the *lite* and *heavy* landmark models (model_complexity 0 and 2)
  at run time, so only model_complexity 1 (the bundled *full* model) is accepted
  (:func:`bundled_model_complexities`).
- Not used: CMU OpenPose's weights (controlnet_aux's ``OpenposeDetector``; non-commercial licence, downloaded),
  DWPose/rtmlib (weights downloaded at run time), openpifpaf and ultralytics (AGPL-3.0).
- mediapipe is installed by the Makefile with ``--no-deps`` (its metadata pins numpy<2 and pulls jax,
  matplotlib, opencv-contrib ...). It imports ``matplotlib.pyplot`` at package import for drawing helpers that
  this module never calls, and matplotlib is not installed: :func:`_pose_module` imports mediapipe with an empty
  placeholder module in ``sys.modules`` for the length of that import only (and only when matplotlib is absent).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageOps

NO_PERSON_MESSAGE = (
    "No person was found in this photo, so no pose could be taken from it. Choose a photo where one person is "
    "clearly visible, at least from the head to the shoulders."
)
TOO_FEW_KEYPOINTS_MESSAGE = (
    "Too little of the person in this photo could be seen to take a pose from it. Choose a photo where the head "
    "and shoulders are clearly visible."
)

#: The 18 OpenPose keypoints, in the COCO order that ControlNet's OpenPose models use.
OPENPOSE_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)

#: OpenPose keypoint index → BlazePose landmark index(es); the neck (1) is the midpoint of the two shoulders.
BLAZEPOSE_TO_OPENPOSE: tuple[tuple[int, ...], ...] = (
    (0,),  # nose
    (11, 12),  # neck: midpoint of the left and right shoulders
    (12,),  # right shoulder
    (14,),  # right elbow
    (16,),  # right wrist
    (11,),  # left shoulder
    (13,),  # left elbow
    (15,),  # left wrist
    (24,),  # right hip
    (26,),  # right knee
    (28,),  # right ankle
    (23,),  # left hip
    (25,),  # left knee
    (27,),  # left ankle
    (5,),  # right eye
    (2,),  # left eye
    (8,),  # right ear
    (7,),  # left ear
)

#: controlnet_aux's ``draw_bodypose`` limbs, as pairs of 1-based OpenPose keypoint numbers.
LIMBS: tuple[tuple[int, int], ...] = (
    (2, 3),
    (2, 6),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 8),
    (2, 9),
    (9, 10),
    (10, 11),
    (2, 12),
    (12, 13),
    (13, 14),
    (2, 1),
    (1, 15),
    (15, 17),
    (1, 16),
    (16, 18),
)

#: The 18 OpenPose colours (RGB): keypoint i is drawn in COLOURS[i], limb i in 60 % of COLOURS[i].
COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)

#: A BlazePose landmark below this visibility is left out (OpenPose draws only the joints it found).
MIN_VISIBILITY = 0.5
#: Fewer keypoints than this in the frame: no usable pose.
MIN_KEYPOINTS = 2
#: controlnet_aux draws limbs 4 px wide and joints 4 px in radius on a 512 px image; scaled to the photo here.
STICK_WIDTH = 4
JOINT_RADIUS = 4
REFERENCE_SIDE = 512
#: Photos are downscaled to this longest side before detection (BlazePose itself sees 224-256 px).
DETECT_MAX_SIDE = 1280
#: mediapipe's default landmark model, the only one its wheel ships.
DEFAULT_MODEL_COMPLEXITY = 1

_LANDMARK_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


class PoseNotFound(ValueError):
    """No pose could be taken from the image; ``str(error)`` is a message for the photographer."""


class Keypoint(NamedTuple):
    """A keypoint in coordinates relative to the image (0-1 from left to right and from top to bottom)."""

    x: float
    y: float


# ------------------------------------------------------------------------------------------------ recognise


def _palette_directions() -> np.ndarray:
    colours = np.array(COLOURS, dtype=np.float32)
    return colours / colours.max(axis=1, keepdims=True)


_DIRECTIONS = _palette_directions()


def is_pose_skeleton(image: Image.Image) -> bool:
    """Whether ``image`` looks like an OpenPose skeleton image: mostly black, and nearly all of the rest
    saturated strokes in the OpenPose palette's hues (at any brightness, so the 60 % limbs, resized edges and
    JPEG compression still count), with at least four of the palette's colours present. A heuristic: a photo
    fails it (too little black, or colours off the palette); a black picture with a few neon strokes in four
    palette hues would pass."""
    rgb = image.convert("RGB")
    rgb.thumbnail((256, 256), Image.Resampling.NEAREST)
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    brightest = pixels.max(axis=1)
    lit = brightest >= 48
    total = len(pixels)
    lit_count = int(lit.sum())
    if lit_count < max(4, total * 0.001) or (total - lit_count) < total * 0.6:
        return False
    strokes = pixels[lit]
    peak = strokes.max(axis=1, keepdims=True)
    saturated = strokes.min(axis=1) <= 0.3 * peak[:, 0]
    direction = strokes / peak
    # Distance (largest channel difference) from each pixel's hue to each palette hue; palette hues are 1/3 apart.
    distance = np.abs(direction[:, None, :] - _DIRECTIONS[None, :, :]).max(axis=2)
    nearest = distance.argmin(axis=1)
    on_palette = saturated & (distance[np.arange(len(strokes)), nearest] <= 0.2)
    if on_palette.sum() < 0.7 * lit_count:
        return False
    counts = np.bincount(nearest[on_palette], minlength=len(COLOURS))
    return int((counts >= max(2, lit_count * 0.01)).sum()) >= 4


# ------------------------------------------------------------------------------------------------ detect


def openpose_keypoints(landmarks: Sequence[Any], *, min_visibility: float = MIN_VISIBILITY) -> list[Keypoint | None]:
    """The 18 OpenPose keypoints from BlazePose's 33 landmarks (objects with ``x``, ``y`` relative to the image
    and ``visibility``): None for a keypoint whose landmark(s) are below ``min_visibility`` or that lies outside
    the image. The neck is the midpoint of the two shoulders, when both are visible."""
    keypoints: list[Keypoint | None] = []
    for sources in BLAZEPOSE_TO_OPENPOSE:
        points = [landmarks[i] for i in sources]
        if any(p.visibility < min_visibility for p in points):
            keypoints.append(None)
            continue
        x = sum(p.x for p in points) / len(points)
        y = sum(p.y for p in points) / len(points)
        keypoints.append(Keypoint(x, y) if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 else None)
    return keypoints


def bundled_model_complexities() -> tuple[int, ...]:
    """The model_complexity values whose landmark model the installed mediapipe wheel ships (mediapipe would
    download the others at run time, which the platform does not do): (1,) for mediapipe 0.10.21."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(next(iter(spec.submodule_search_locations))) / "modules" / "pose_landmark"
    return tuple(c for c, name in sorted(_LANDMARK_MODELS.items()) if (folder / name).is_file())


_lock = threading.Lock()
_detectors: dict[int, tuple[Any, threading.Lock]] = {}
_pose_module_cache: list[types.ModuleType] = []


def _pose_module() -> types.ModuleType:
    """``mediapipe.python.solutions.pose``, imported once. mediapipe's package import pulls its drawing helpers,
    which import matplotlib.pyplot (never called here); when matplotlib is not installed, an empty placeholder
    stands in for it during this import only."""
    if _pose_module_cache:
        return _pose_module_cache[0]
    placeholders: dict[str, types.ModuleType] = {}
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        placeholders = {name: types.ModuleType(name) for name in ("matplotlib", "matplotlib.pyplot")}
        sys.modules.update(placeholders)
    try:
        from mediapipe.python.solutions import pose
    except ImportError as exc:
        raise PoseNotFound(
            "Upload an OpenPose skeleton image: this platform can't detect poses in photos (mediapipe is not "
            f"installed: {exc})."
        ) from exc
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    _pose_module_cache.append(pose)
    return pose


def _detector(model_complexity: int) -> tuple[Any, threading.Lock]:
    """The process's BlazePose detector for ``model_complexity`` (created once) and the lock that guards it
    (a mediapipe graph handles one image at a time)."""
    with _lock:
        if model_complexity not in _detectors:
            pose = _pose_module()
            bundled = bundled_model_complexities()
            if model_complexity not in bundled:
                raise ValueError(
                    f"model_complexity {model_complexity}: its landmark model "
                    f"({_LANDMARK_MODELS.get(model_complexity, 'unknown')}) is not in the installed mediapipe "
                    f"wheel and would be downloaded at run time; use one of {bundled}"
                )
            _detectors[model_complexity] = (
                pose.Pose(static_image_mode=True, model_complexity=model_complexity, enable_segmentation=False),
                threading.Lock(),
            )
        return _detectors[model_complexity]


def detect_keypoints(image: Image.Image, *, model_complexity: int = DEFAULT_MODEL_COMPLEXITY) -> list[Keypoint | None]:
    """The 18 OpenPose keypoints of the person in ``image`` (EXIF orientation applied), relative to its size.
    Raises :class:`PoseNotFound` when no person is found or fewer than :data:`MIN_KEYPOINTS` keypoints are."""
    photo = ImageOps.exif_transpose(image).convert("RGB")
    photo.thumbnail((DETECT_MAX_SIDE, DETECT_MAX_SIDE), Image.Resampling.LANCZOS)
    detector, guard = _detector(model_complexity)
    with guard:
        result = detector.process(np.ascontiguousarray(np.asarray(photo, dtype=np.uint8)))
    if result.pose_landmarks is None:
        raise PoseNotFound(NO_PERSON_MESSAGE)
    keypoints = openpose_keypoints(result.pose_landmarks.landmark)
    if sum(k is not None for k in keypoints) < MIN_KEYPOINTS:
        raise PoseNotFound(TOO_FEW_KEYPOINTS_MESSAGE)
    return keypoints


# ------------------------------------------------------------------------------------------------ draw


def _ellipse(centre: tuple[float, float], half_length: int, half_width: int, angle: int) -> list[tuple[int, int]]:
    """The polygon cv2.ellipse2Poly(centre, (half_length, half_width), angle, 0, 360, 1) gives: a point per
    degree of the ellipse rotated by ``angle`` degrees (image coordinates, y down)."""
    cx, cy = int(centre[0]), int(centre[1])
    sin_a, cos_a = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    points = []
    for degree in range(0, 361):
        t = math.radians(degree)
        x, y = half_length * math.cos(t), half_width * math.sin(t)
        points.append((round(cx + x * cos_a - y * sin_a), round(cy + x * sin_a + y * cos_a)))
    return points


def draw_bodypose(size: tuple[int, int], keypoints: Sequence[Keypoint | None]) -> Image.Image:
    """The OpenPose skeleton image of ``keypoints`` (18, relative coordinates, None for a missing one) on black,
    ``size`` (width, height) pixels: controlnet_aux's ``draw_bodypose`` (limbs first, as filled ellipses in 60 %
    of their colour, then the joints as full-colour discs), with its 4 px stroke and radius scaled from a 512 px
    image to this one's shorter side."""
    width, height = size
    scale = min(width, height) / REFERENCE_SIDE
    stick = max(1, round(STICK_WIDTH * scale))
    radius = max(1, round(JOINT_RADIUS * scale))
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for (first, second), colour in zip(LIMBS, COLOURS, strict=False):
        a, b = keypoints[first - 1], keypoints[second - 1]
        if a is None or b is None:
            continue
        xs = (a.x * width, b.x * width)
        ys = (a.y * height, b.y * height)
        length = math.hypot(xs[0] - xs[1], ys[0] - ys[1])
        angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
        polygon = _ellipse((sum(xs) / 2, sum(ys) / 2), int(length / 2), stick, int(angle))
        draw.polygon(polygon, fill=tuple(int(c * 0.6) for c in colour))
    for keypoint, colour in zip(keypoints, COLOURS, strict=True):
        if keypoint is None:
            continue
        x, y = int(keypoint.x * width), int(keypoint.y * height)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return canvas


# ------------------------------------------------------------------------------------------------ entry points


def pose_skeleton(image: Image.Image, *, model_complexity: int = DEFAULT_MODEL_COMPLEXITY) -> Image.Image:
    """The OpenPose skeleton image of the person in ``image``, at its size (after EXIF orientation). Raises
    :class:`PoseNotFound` with a message for the photographer when no person is found."""
    size = ImageOps.exif_transpose(image).size
    return draw_bodypose(size, detect_keypoints(image, model_complexity=model_complexity))


def pose_control_image(image: Image.Image, *, model_complexity: int = DEFAULT_MODEL_COMPLEXITY) -> Image.Image:
    """The pose ControlNet's control image for an upload: the image itself when it already is an OpenPose
    skeleton, else the skeleton of the person in it (:class:`PoseNotFound` when there is none)."""
    if is_pose_skeleton(image):
        return image
    return pose_skeleton(image, model_complexity=model_complexity)
