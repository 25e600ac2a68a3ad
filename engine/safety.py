"""Content safety for intake photos: explicit nudity is rejected, with nudenet's detector.

Plain Python (no Django). nudenet is pinned to 3.0.8, whose wheel carries the MIT licence text (the 3.4.x
wheels carry AGPL-3.0; see docs/licences.md). 3.0.8 ships its ONNX model (``nudenet/best.onnx``, a 320 px
YOLOv8 detector) and runs on onnxruntime, offline. Its ``NudeDetector.detect`` takes a file *path* only (it
calls ``cv2.imread``), so this module checks an in-memory PIL image without a temporary file: it runs the
detector's own onnxruntime session on an array prepared exactly as nudenet's ``_read_image`` prepares a file
(:func:`prepare_array`, proved identical by tests/engine/test_safety.py) and decodes the output with nudenet's
own ``_postprocess``. Detections are ``{"class": LABEL, "score": float, "box": [x, y, w, h]}``. The detector
is created lazily, once per process.

Only the *exposed* explicit classes reject a photo (genitalia, female breasts, buttocks, anus); covered
classes, faces, feet, belly, armpits and male chests are normal in portraits and never reject. The default
score threshold, 0.5, is the detector's own midpoint: nudenet keeps candidates from 0.2 upwards, and on the
portrait fixtures (shared/fixtures/faces) 3.0.8's only non-face detection is BUTTOCKS_COVERED at 0.44.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: nudenet labels that reject a photo when detected above the threshold (nudenet 3.0.8's label names).
EXPLICIT_CLASSES: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)

EXPLICIT_MESSAGE = (
    "This photo can't be used because it appears to contain nudity. Please choose a photo where you are dressed."
)


@dataclass(frozen=True)
class SafetyRules:
    #: Minimum detector score for an explicit class to reject the photo (nudenet's scores run 0.2-1.0).
    min_score: float = 0.5
    #: The labels that count as explicit.
    explicit_classes: frozenset[str] = EXPLICIT_CLASSES
    #: The photo is downscaled to this longest side before detection (the model itself sees 320 px).
    max_side: int = 1280


@dataclass(frozen=True)
class SafetyFinding:
    label: str
    score: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class SafetyReport:
    """``findings`` are the explicit detections at or above the threshold; empty when the photo is safe."""

    findings: tuple[SafetyFinding, ...]
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


@functools.cache
def _detector() -> Any:
    from nudenet import NudeDetector

    return NudeDetector()


def prepare_array(bgr: np.ndarray, target_size: int = 320) -> tuple[np.ndarray, float, int, int]:
    """nudenet 3.0.8's ``_read_image`` from a BGR uint8 array instead of a path (same steps, same cv2 calls).

    Returns the model input (1, 3, size, size) float32 in 0..1, the resize factor and the left and top padding,
    which nudenet's ``_postprocess`` needs to map boxes back to the array's pixels.
    """
    import cv2

    img_height, img_width = bgr.shape[:2]
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    aspect = img_width / img_height
    if img_height > img_width:
        new_height = target_size
        new_width = int(round(target_size * aspect))
    else:
        new_width = target_size
        new_height = int(round(target_size / aspect))
    resize_factor = math.sqrt((img_width**2 + img_height**2) / (new_width**2 + new_height**2))
    img = cv2.resize(img, (new_width, new_height))
    pad_x = target_size - new_width
    pad_y = target_size - new_height
    # nudenet puts half the padding on each side, rounded down (an odd pixel is lost, then resized back).
    pad_top = pad_bottom = pad_y // 2
    pad_left = pad_right = pad_x // 2
    img = cv2.copyMakeBorder(img, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_CONSTANT, value=[0, 0, 0])
    img = cv2.resize(img, (target_size, target_size))
    data = np.expand_dims(np.transpose(img.astype("float32") / 255.0, (2, 0, 1)), axis=0)
    return data, resize_factor, pad_left, pad_top


def detect_array(bgr: np.ndarray) -> list[dict[str, Any]]:
    """nudenet 3.0.8's ``NudeDetector.detect`` on a BGR uint8 array (what ``cv2.imread`` would have read)."""
    from nudenet.nudenet import _postprocess

    detector = _detector()
    data, resize_factor, pad_left, pad_top = prepare_array(bgr, detector.input_width)
    outputs = detector.onnx_session.run(None, {detector.input_name: data})
    return list(_postprocess(outputs, resize_factor, pad_left, pad_top))


def classify_detections(detections: Iterable[Mapping[str, Any]], *, rules: SafetyRules = SafetyRules()) -> SafetyReport:  # noqa: B008
    """Turn nudenet's raw detections into a verdict (pure function, testable without the model)."""
    findings = tuple(
        sorted(
            (
                SafetyFinding(
                    label=str(d["class"]),
                    score=float(d["score"]),
                    box=tuple(int(v) for v in d.get("box", (0, 0, 0, 0)))[:4],  # type: ignore[arg-type]
                )
                for d in detections
                if d.get("class") in rules.explicit_classes and float(d.get("score", 0.0)) >= rules.min_score
            ),
            key=lambda f: f.score,
            reverse=True,
        )
    )
    if findings:
        return SafetyReport(findings=findings, code="explicit", message=EXPLICIT_MESSAGE)
    return SafetyReport(findings=())


def detect_raw(image: Image.Image, *, rules: SafetyRules = SafetyRules()) -> list[dict[str, Any]]:  # noqa: B008
    """nudenet's detections for ``image`` (boxes in the downscaled copy's pixels)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, rules.max_side / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BILINEAR
        )
    # A 3-channel BGR array, exactly what nudenet gets when it reads a file itself (cv2.imread).
    bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    return detect_array(bgr)


def check_safety(image: Image.Image, *, rules: SafetyRules = SafetyRules()) -> SafetyReport:  # noqa: B008
    """Reject explicit nudity: code ``"explicit"`` with a calm human message, or an ok report."""
    return classify_detections(detect_raw(image, rules=rules), rules=rules)
