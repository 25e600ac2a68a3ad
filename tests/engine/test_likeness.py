"""Likeness scores and ranking (engine/likeness.py) with real dlib embeddings of the face fixtures:
photos of person A score high against A's centroid, person B scores low and is flagged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from engine.likeness import (
    ImageScore,
    identity_centroid,
    likeness_from_distance,
    rank,
    score_image,
)
from tests.face_fixtures import FACES

pytest.importorskip("dlib")

pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}")


def _open(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


@pytest.fixture(scope="module")
def person_a() -> list[Image.Image]:
    return [_open(f"person_a_0{i}.jpg") for i in range(1, 5)]


@pytest.fixture(scope="module")
def centroid_a(person_a: list[Image.Image]) -> np.ndarray:
    centroid = identity_centroid(person_a)
    assert centroid is not None and centroid.shape == (128,)
    return centroid


def test_mapping_is_documented_and_monotone() -> None:
    assert likeness_from_distance(0.0) == 100.0
    assert likeness_from_distance(0.6) == pytest.approx(50.0)  # dlib's same-person threshold
    assert likeness_from_distance(1.2) == 0.0 and likeness_from_distance(3.0) == 0.0
    values = [likeness_from_distance(d) for d in np.linspace(0, 1.5, 31)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert all(0.0 <= v <= 100.0 for v in values)
    with pytest.raises(ValueError):
        likeness_from_distance(-0.1)
    with pytest.raises(ValueError):
        likeness_from_distance(float("nan"))


def test_same_person_scores_high_other_person_low(person_a: list[Image.Image], centroid_a: np.ndarray) -> None:
    for image in person_a:
        score = score_image(image, centroid_a)
        assert score.faces == 1 and score.likeness is not None
        assert score.likeness > 60, score  # A lies 0.19-0.45 from A's centre
        assert "low_likeness" not in score.flags and "no_face" not in score.flags
    for name in ("person_b_01.jpg", "person_b_02.jpg"):
        other = score_image(_open(name), centroid_a)
        assert other.likeness is not None and other.likeness < 40, other  # B lies ~0.8 away: likeness ~33
        assert "low_likeness" in other.flags and other.distance is not None and other.distance > 0.6
    # an unseen photo of A (a partial crop) still scores as A
    assert (score_image(_open("person_a_05_partial.jpg"), centroid_a).likeness or 0) > 50


def test_flags(centroid_a: np.ndarray, person_a: list[Image.Image]) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    empty = score_image(noise, centroid_a)
    assert empty.flags == ["no_face"] and empty.likeness is None and empty.faces == 0

    group = score_image(_open("two_people.jpg"), centroid_a)
    assert group.faces >= 2 and "several_faces" in group.flags

    sharp = person_a[0]
    blurred = score_image(sharp.filter(ImageFilter.GaussianBlur(6)), None)
    assert blurred.faces == 1 and "blurry" in blurred.flags and blurred.likeness is None

    dark = score_image(ImageEnhance.Brightness(sharp).enhance(0.15), None)
    if dark.faces:  # the detector may lose a very dark face; when it finds it, the exposure is flagged
        assert "badly_exposed" in dark.flags

    assert identity_centroid([noise]) is None
    assert score_image(sharp, None).flags == []  # no centroid: only face count and technical checks


def test_rank_puts_best_first_and_flagged_last() -> None:
    scores = [
        ImageScore(likeness=70.0, faces=1, sharpness=100.0, brightness=120.0, flags=[]),
        ImageScore(likeness=None, faces=0, sharpness=None, brightness=None, flags=["no_face"]),
        ImageScore(likeness=90.0, faces=1, sharpness=50.0, brightness=120.0, flags=[]),
        ImageScore(likeness=30.0, faces=1, sharpness=100.0, brightness=120.0, flags=["low_likeness"]),
        ImageScore(likeness=80.0, faces=1, sharpness=5.0, brightness=120.0, flags=["blurry"]),
        ImageScore(likeness=70.0, faces=1, sharpness=200.0, brightness=120.0, flags=[]),
    ]
    assert rank(scores) == [2, 5, 0, 4, 3, 1]
    assert rank([]) == []


def test_ranking_real_images(person_a: list[Image.Image], centroid_a: np.ndarray) -> None:
    images = [_open("person_b_01.jpg"), person_a[1], Image.new("RGB", (128, 128), "grey")]
    order = rank([score_image(image, centroid_a) for image in images])
    assert order == [1, 0, 2]  # A, then B (low likeness), then the image without a face


# --- group portraits: each face against its own person, ranked by the weakest ---------------------------------


def _side_by_side(left: Image.Image, right: Image.Image, height: int = 600) -> Image.Image:
    scaled = [im.convert("RGB").resize((round(im.width * height / im.height), height)) for im in (left, right)]
    canvas = Image.new("RGB", (scaled[0].width + scaled[1].width, height), (128, 128, 128))
    canvas.paste(scaled[0], (0, 0))
    canvas.paste(scaled[1], (scaled[0].width, 0))
    return canvas


def test_a_group_portrait_scores_each_face_against_its_own_person_and_ranks_by_the_weakest(
    person_a: list[Image.Image], centroid_a: np.ndarray
) -> None:
    from engine.faces import detect_faces
    from engine.likeness import identity_centroid, score_group_image

    centroid_b = identity_centroid([_open("person_b_02.jpg")])
    assert centroid_b is not None
    picture = _side_by_side(person_a[0], _open("person_b_01.jpg"))
    faces = sorted(detect_faces(picture), key=lambda f: f.left)
    assert len(faces) == 2
    left, right = ([f.left, f.top, f.right, f.bottom] for f in faces)

    right_way = score_group_image(picture, [(left, centroid_a), (right, centroid_b)])
    assert [f["slot"] for f in right_way.per_face] == [1, 2]
    assert all(f["likeness"] >= 50 for f in right_way.per_face), right_way.per_face
    assert right_way.likeness == pytest.approx(min(f["likeness"] for f in right_way.per_face), abs=0.05)
    assert "low_likeness" not in right_way.flags and "several_faces" not in right_way.flags

    # The same picture with the people swapped (each face given to the other person): both faces score low.
    swapped = score_group_image(picture, [(left, centroid_b), (right, centroid_a)])
    assert all(f["likeness"] < 50 for f in swapped.per_face) and "low_likeness" in swapped.flags
    # One right, one wrong: the portrait is as good as its weakest face.
    half = score_group_image(picture, [(left, centroid_a), (right, centroid_a)])
    assert half.likeness == pytest.approx(half.per_face[1]["likeness"], abs=0.05)
    assert half.per_face[1]["likeness"] < 50 <= half.per_face[0]["likeness"] and "low_likeness" in half.flags
    assert rank([swapped, half, right_way])[0] == 2  # the right assignment first

    # A slot whose face isn't there (a box over the background): "no_face", and no likeness for the portrait.
    missing = score_group_image(picture, [(left, centroid_a), ([0, 560, 40, 600], centroid_b)])
    assert "no_face" in missing.flags and missing.likeness is None and missing.per_face[1]["likeness"] is None
