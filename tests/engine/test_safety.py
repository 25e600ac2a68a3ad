"""Content safety (generation.engine.safety): the fixtures pass; the rejection logic on synthetic detections."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("nudenet", reason="nudenet is not installed (pip install nudenet)")

from generation.engine.safety import (  # noqa: E402
    EXPLICIT_CLASSES,
    SafetyRules,
    check_safety,
    classify_detections,
)
from tests.face_fixtures import FACES  # noqa: E402

FIXTURES = sorted(p for p in FACES.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}) if FACES.is_dir() else []


@pytest.mark.skipif(not FIXTURES, reason=f"face fixtures missing at {FACES}")
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_ordinary_portraits_pass(path: Path) -> None:
    with Image.open(path) as image:
        image.load()
        report = check_safety(image, rules=SafetyRules())
    assert report.ok, report.findings
    assert report.code is None


def test_a_plain_image_passes() -> None:
    assert check_safety(Image.new("RGB", (400, 300), (200, 180, 160)), rules=SafetyRules()).ok


@pytest.mark.parametrize("label", sorted(EXPLICIT_CLASSES))
def test_explicit_class_above_threshold_rejects(label: str) -> None:
    detections = [
        {"class": "FACE_FEMALE", "score": 0.8, "box": [10, 10, 50, 60]},
        {"class": label, "score": 0.62, "box": [40, 100, 80, 90]},
    ]
    report = classify_detections(detections, rules=SafetyRules())
    assert not report.ok
    assert report.code == "explicit"
    assert report.message and "nudity" in report.message
    assert [f.label for f in report.findings] == [label]
    assert report.findings[0].box == (40, 100, 80, 90)


def test_explicit_class_below_threshold_passes() -> None:
    report = classify_detections([{"class": "FEMALE_BREAST_EXPOSED", "score": 0.49, "box": [0, 0, 5, 5]}])
    assert report.ok and report.code is None


def test_threshold_is_inclusive_and_configurable() -> None:
    detections = [{"class": "BUTTOCKS_EXPOSED", "score": 0.5, "box": [0, 0, 5, 5]}]
    assert not classify_detections(detections).ok
    assert classify_detections(detections, rules=SafetyRules(min_score=0.7)).ok


@pytest.mark.parametrize(
    "label",
    [
        "FACE_FEMALE",
        "FACE_MALE",
        "MALE_BREAST_EXPOSED",
        "BELLY_EXPOSED",
        "FEET_EXPOSED",
        "ARMPITS_EXPOSED",
        "FEMALE_BREAST_COVERED",
        "BUTTOCKS_COVERED",
        "FEMALE_GENITALIA_COVERED",
        "ANUS_COVERED",
    ],
)
def test_covered_and_harmless_classes_never_reject(label: str) -> None:
    assert classify_detections([{"class": label, "score": 0.99, "box": [0, 0, 5, 5]}]).ok


def test_findings_sorted_by_score_and_empty_input_ok() -> None:
    report = classify_detections(
        [
            {"class": "ANUS_EXPOSED", "score": 0.55, "box": [0, 0, 1, 1]},
            {"class": "MALE_GENITALIA_EXPOSED", "score": 0.91, "box": [0, 0, 1, 1]},
        ]
    )
    assert [f.score for f in report.findings] == pytest.approx([0.91, 0.55])
    assert classify_detections([]).ok
