"""Content safety (engine.safety): the fixtures pass; the rejection logic on synthetic detections."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("nudenet", reason="nudenet is not installed (pip install nudenet)")

from engine.safety import (  # noqa: E402
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


def test_explicit_classes_are_nudenet_308_labels() -> None:
    """Issue 13, finding 13: nudenet is pinned to 3.0.8 (MIT wheel); every explicit label is one of its labels."""
    from importlib.metadata import version

    import nudenet.nudenet as nn

    assert version("nudenet") == "3.0.8"
    labels = set(nn.__labels)  # nudenet's module-level label list (no name mangling outside a class)
    assert labels >= EXPLICIT_CLASSES


@pytest.mark.parametrize("size", [(333, 200), (200, 333), (320, 320), (641, 479)])
def test_array_preparation_matches_nudenet_reading_a_file(tmp_path: Path, size: tuple[int, int]) -> None:
    """Issue 13, finding 13: nudenet 3.0.8 reads only paths; prepare_array is its _read_image, from memory."""
    import numpy as np
    from nudenet.nudenet import _read_image

    from engine.safety import prepare_array

    rng = np.random.default_rng(13)
    rgb = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    expected = _read_image(str(path), 320)
    got = prepare_array(np.ascontiguousarray(rgb[:, :, ::-1]), 320)
    assert got[0].shape == expected[0].shape == (1, 3, 320, 320)
    assert np.array_equal(got[0], expected[0])
    assert got[1:] == pytest.approx(expected[1:])


@pytest.mark.skipif(not FIXTURES, reason=f"face fixtures missing at {FACES}")
def test_in_memory_detection_matches_nudenet_detect_on_the_file(tmp_path: Path) -> None:
    """Issue 13, finding 13: detect_array gives nudenet 3.0.8's own detect(path) result, without a temp file."""
    import numpy as np
    from nudenet import NudeDetector

    from engine.safety import detect_array

    with Image.open(FIXTURES[0]) as image:
        rgb = image.convert("RGB")
    path = tmp_path / "photo.png"
    rgb.save(path)
    expected = NudeDetector().detect(str(path))
    got = detect_array(np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]))
    assert [d["class"] for d in got] == [d["class"] for d in expected]
    assert [d["score"] for d in got] == pytest.approx([d["score"] for d in expected])
    assert [d["box"] for d in got] == [d["box"] for d in expected]
