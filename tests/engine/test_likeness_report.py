"""The likeness report (engine.likeness.likeness_report): portraits judged against the held-out centroid of the
client's photos, with the copy guard, on real dlib embeddings of the face fixtures (no mocks), plus the rule's
and the summary's arithmetic on hand-made vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from engine.likeness import (
    LIKENESS_LINE,
    CopyGuard,
    LikenessReport,
    likeness_report,
    main_face_embedding,
    summarise_likeness,
)
from tests.face_fixtures import FACES, PEOPLE, shots

pytest.importorskip("dlib")

TRAINING = PEOPLE[:2]  # person_a_01, person_a_02: the double is trained on their five shots each
HELDOUT = PEOPLE[2:]  # person_a_03, person_a_04: never trained on


def _open(name: str) -> Image.Image:
    with Image.open(FACES / name) as image:
        return image.convert("RGB")


def _embeddings(names: list[str]) -> list[np.ndarray | None]:
    return [main_face_embedding(image) for name in names for image in shots(name).values()]


@pytest.fixture(scope="module")
def client_photos() -> dict[str, list[np.ndarray | None]]:
    if not FACES.is_dir():
        pytest.skip(f"face fixtures missing at {FACES}")
    return {"training": _embeddings(TRAINING), "heldout": _embeddings(HELDOUT)}


@pytest.fixture(scope="module")
def report(client_photos: dict[str, list[np.ndarray | None]]) -> LikenessReport:
    original = _open("person_a_01.jpg")  # a training photo
    w, h = original.size
    portraits = [
        main_face_embedding(original),  # 0: the training photo itself
        main_face_embedding(original.crop((w // 20, h // 20, w - w // 20, h - h // 20))),  # 1: a light crop of it
        main_face_embedding(ImageEnhance.Brightness(original).enhance(1.2)),  # 2: brightened
        main_face_embedding(_open("person_a_07_small.jpg")),  # 3: the 320x240 copy of person_a_01
        main_face_embedding(_open("person_a_04.jpg")),  # 4: another photo of A (held-out)
        main_face_embedding(_open("person_b_01.jpg")),  # 5: someone else
        main_face_embedding(Image.new("RGB", (256, 256), (128, 128, 128))),  # 6: no face
    ]
    return likeness_report(portraits, client_photos["heldout"], client_photos["training"])


def test_every_photo_has_a_face(client_photos: dict[str, list[np.ndarray | None]]) -> None:
    assert all(e is not None and e.shape == (128,) for e in client_photos["training"] + client_photos["heldout"])


def test_training_photos_and_light_edits_of_them_are_copies(report: LikenessReport) -> None:
    for row in report.portraits[:4]:
        assert row.face and row.copy, row
        assert row.nearest_training_distance is not None and row.nearest_training_distance < 0.1
        assert row.nearest_training is not None and row.nearest_training < 5  # one of person_a_01's five shots
        assert row.heldout_distance is not None and row.heldout_distance > 0.25
        # a copy still looks like the client: the guard is what catches it, not the likeness
        assert row.likeness is not None and row.likeness >= LIKENESS_LINE
    assert report.portraits[0].nearest_training == 0  # shots(person_a_01)["orig"] itself
    assert report.portraits[0].nearest_training_distance == pytest.approx(0.0, abs=1e-9)


def test_another_photo_of_the_client_is_no_copy_and_looks_like_them(report: LikenessReport) -> None:
    row = report.portraits[4]
    assert row.face and not row.copy
    assert row.nearest_training_distance is not None and row.nearest_training_distance > 0.3
    assert row.likeness is not None and row.likeness > 70  # 0.18 from the held-out centre


def test_someone_else_is_neither_like_nor_a_copy(report: LikenessReport) -> None:
    row = report.portraits[5]
    assert row.face and not row.copy
    assert row.likeness is not None and row.likeness < LIKENESS_LINE
    assert row.heldout_distance is not None and row.heldout_distance > 0.7


def test_no_face_is_counted_but_not_scored(report: LikenessReport) -> None:
    row = report.portraits[6]
    assert not row.face and not row.copy
    assert row.likeness is None and row.heldout_distance is None and row.nearest_training is None


def test_summary_figures(report: LikenessReport) -> None:
    summary = report.summary
    assert (summary.count, summary.scored, report.faces, report.copies) == (7, 6, 6, 4)
    assert (report.heldout_photos, report.training_photos) == (10, 10)
    likeness = [row.likeness for row in report.portraits if row.likeness is not None]
    assert summary.median == pytest.approx(float(np.median(likeness)))
    assert summary.mean == pytest.approx(float(np.mean(likeness)))
    assert summary.above_line == 5 and summary.share_above_line == pytest.approx(5 / 6)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["copies"] == 4 and data["summary"]["scored"] == 6 and len(data["portraits"]) == 7
    assert data["guard"] == {"ratio": 0.5, "max_distance": 0.15}


def test_a_photo_neither_trained_on_nor_held_out_is_no_copy(client_photos: dict[str, list[np.ndarray | None]]) -> None:
    # held-out = person_a_04's shots only; person_a_03 is in neither set: a new photo of the client
    heldout = client_photos["heldout"][5:]
    portrait = main_face_embedding(_open("person_a_03.jpg"))
    row = likeness_report([portrait], heldout, client_photos["training"]).portraits[0]
    assert not row.copy and row.likeness is not None and row.likeness >= LIKENESS_LINE


# ---------------------------------------------------------------------------------------------- the arithmetic


def _vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_copy_rule_needs_both_conditions() -> None:
    guard = CopyGuard(ratio=0.5, max_distance=0.15)
    assert guard.is_copy(0.1, 0.3)  # close, and much closer than the held-out centre
    assert not guard.is_copy(0.1, 0.19)  # close, but the held-out centre is nearly as close
    assert not guard.is_copy(0.2, 0.8)  # ratio small, but not close to any training photo
    assert not guard.is_copy(0.15, 1.0)  # the bound is strict
    assert guard.is_copy(0.1, None)  # no held-out centroid: the bound alone
    assert not guard.is_copy(None, 0.3)
    with pytest.raises(ValueError):
        CopyGuard(ratio=0)


def test_report_on_hand_made_vectors() -> None:
    training = [_vec(1, 0), None, _vec(0, 1)]
    heldout = [_vec(0.6, 0.6), _vec(0.6, 0.6)]
    portraits = [_vec(0.95, 0.0), _vec(0.6, 0.6), None]
    report = likeness_report(portraits, heldout, training)
    first, second, third = report.portraits
    assert first.nearest_training == 0 and first.nearest_training_distance == pytest.approx(0.05)
    assert first.heldout_distance == pytest.approx(np.hypot(0.35, 0.6)) and first.copy
    assert second.nearest_training == 0 and second.heldout_distance == pytest.approx(0.0)
    assert second.likeness == 100.0 and not second.copy
    assert not third.face and third.likeness is None
    assert (report.training_photos, report.heldout_photos, report.faces, report.copies) == (2, 2, 2, 1)
    # the training photo without a face keeps its place in the numbering
    assert likeness_report([_vec(0, 0.98)], heldout, training).portraits[0].nearest_training == 2


def test_without_held_out_photos_nothing_is_scored() -> None:
    report = likeness_report([_vec(1, 0)], [None], [_vec(1, 0.01)])
    row = report.portraits[0]
    assert row.likeness is None and row.heldout_distance is None and row.copy
    assert report.summary.scored == 0 and report.summary.median is None and report.summary.share_above_line is None


def test_embeddings_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        likeness_report([_vec(1, 0, 0)], [_vec(1, 0)], [_vec(1, 0)])
    with pytest.raises(ValueError):
        likeness_report([_vec(1, 0)], [_vec(1, 0), _vec(1, 0, 0)], [])


def test_summarise_likeness() -> None:
    summary = summarise_likeness([80.0, None, 40.0, 50.0, 70.0])
    assert (summary.count, summary.scored, summary.above_line) == (5, 4, 3)
    assert summary.median == pytest.approx(60.0) and summary.mean == pytest.approx(60.0)
    assert summary.share_above_line == pytest.approx(0.75)
    assert summary.as_dict()["line"] == LIKENESS_LINE
    empty = summarise_likeness([])
    assert (empty.count, empty.scored, empty.median, empty.mean, empty.share_above_line) == (0, 0, None, None, None)
