"""Content safety for intake photos: explicit nudity is rejected, with nudenet's detector.

Plain Python (no Django). nudenet 3.x ships its ONNX model (``320n.onnx``) in the wheel and runs on
onnxruntime, offline. ``NudeDetector.detect`` takes a path, bytes or a numpy array and returns a list of
``{"class": LABEL, "score": float, "box": [x, y, w, h]}``. The detector is created lazily, once per process.

Only the *exposed* explicit classes reject a photo (genitalia, female breasts, buttocks, anus); covered
classes, faces, feet, belly, armpits and male chests are normal in portraits and never reject. The default
score threshold, 0.5, is the detector's own midpoint: nudenet keeps candidates from 0.2 upwards, and on
ordinary portraits (the face fixtures) its only non-face detections are covered classes scoring 0.25-0.35.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: nudenet labels that reject a photo when detected above the threshold.
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
    return list(_detector().detect(bgr))


def check_safety(image: Image.Image, *, rules: SafetyRules = SafetyRules()) -> SafetyReport:  # noqa: B008
    """Reject explicit nudity: code ``"explicit"`` with a calm human message, or an ok report."""
    return classify_detections(detect_raw(image, rules=rules), rules=rules)
