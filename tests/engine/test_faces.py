"""Face checks (engine.faces) on the real photos in shared/fixtures/faces (see its SOURCE.md)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

pytest.importorskip("dlib", reason="dlib is not installed (pip install dlib-bin)")
# Not imported: its own module imports pkg_resources, which setuptools >= 81 no longer ships (faces.py finds the
# model files without importing it).
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("face_recognition_models is not installed", allow_module_level=True)

from engine.faces import (  # noqa: E402
    FaceReport,
    FaceRules,
    analyse_face,
    identity_distances,
    identity_outliers,
    robust_centre,
)
from tests.face_fixtures import FACES  # noqa: E402

pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}")

RULES = FaceRules()


def load(name: str) -> Image.Image:
    with Image.open(FACES / name) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def analyse() -> Callable[[str], FaceReport]:
    """analyse_face on a fixture, each file analysed once per module."""
    cache: dict[str, FaceReport] = {}

    def run(name: str) -> FaceReport:
        if name not in cache:
            cache[name] = analyse_face(load(name), RULES)
        return cache[name]

    return run


@pytest.mark.parametrize("name", ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"])
def test_good_portraits_are_accepted_with_one_face(analyse: Callable[[str], FaceReport], name: str) -> None:
    report = analyse(name)
    assert report.ok, report.issues
    assert len(report.boxes) == 1
    assert report.main_box is not None and min(report.main_box.width, report.main_box.height) >= RULES.min_face_px
    assert report.sharpness is not None and report.sharpness >= RULES.min_sharpness
    assert report.brightness is not None and RULES.min_brightness <= report.brightness <= RULES.max_brightness
    assert report.embedding is not None and report.embedding.shape == (128,)


def test_rgba_png_is_accepted(analyse: Callable[[str], FaceReport]) -> None:
    # load() converts to RGB; analyse_face also converts by itself:
    with Image.open(FACES / "person_a_08_rgba.png") as image:
        assert image.mode == "RGBA"
        report = analyse_face(image, RULES)
    assert report.ok, report.issues


@pytest.mark.parametrize("name", ["two_people.jpg", "three_people.jpg"])
def test_group_photos_are_rejected(analyse: Callable[[str], FaceReport], name: str) -> None:
    report = analyse(name)
    assert "several_faces" in report.codes
    assert len(report.boxes) >= 2
    message = next(i.message for i in report.issues if i.code == "several_faces")
    assert message.startswith("Another person's face is in the photo")


def test_a_small_background_face_is_tolerated() -> None:
    # person_a_01 with a copy of itself pasted at 1/3 scale (area ratio ~1/9 < 1/4) in the lower corner.
    base = load("person_a_01.jpg")
    small = base.resize((base.width // 3, base.height // 3))
    canvas = Image.new("RGB", (base.width + small.width, base.height), (128, 128, 128))
    canvas.paste(base, (0, 0))
    canvas.paste(small, (base.width, base.height - small.height))
    report = analyse_face(canvas, FaceRules(detect_max_side=1400))
    assert len(report.boxes) == 2, report.boxes
    assert "several_faces" not in report.codes


def test_small_photo_face_too_small(analyse: Callable[[str], FaceReport]) -> None:
    assert load("person_a_07_small.jpg").size == (320, 240)
    report = analyse("person_a_07_small.jpg")
    assert report.main_box is not None
    assert report.main_box.width < RULES.min_face_px  # measured: 109 px
    assert "face_too_small" in report.codes
    # ... and the same photo at full size is fine: the size, not the person, is the problem.
    assert analyse("person_a_01.jpg").ok


@pytest.mark.parametrize("name", ["person_a_05_partial.jpg", "person_a_06_partial.jpg"])
def test_partial_crops_are_cut_off(analyse: Callable[[str], FaceReport], name: str) -> None:
    # Both crops really cut the face: dlib's box itself crosses the edge (05: left -54 of 491 px wide,
    # 06: right 584 of 551 px wide), before any margin.
    report = analyse(name)
    assert report.codes == ("face_cut_off",)
    assert report.main_box is not None
    width = load(name).width
    assert report.main_box.left < 0 or report.main_box.right > width


def test_face_near_but_inside_the_edge_uses_the_margin() -> None:
    image = load("person_a_01.jpg")
    box = analyse_face(image, RULES).main_box
    assert box is not None
    # Crop so the face box ends 5 % of its width from the right edge: inside the frame, within the margin.
    tight = image.crop((0, 0, box.right + int(box.width * 0.05), image.height))
    assert "face_cut_off" in analyse_face(tight, RULES).codes
    roomy = image.crop((0, 0, box.right + int(box.width * 0.5), image.height))
    assert "face_cut_off" not in analyse_face(roomy, RULES).codes


def test_blurred_copy_is_blurry() -> None:
    report = analyse_face(load("person_a_01.jpg").filter(ImageFilter.GaussianBlur(6)), RULES)
    assert report.sharpness is not None and report.sharpness < RULES.min_sharpness
    assert "blurry" in report.codes


def test_darkened_copy_is_badly_exposed() -> None:
    report = analyse_face(ImageEnhance.Brightness(load("person_a_01.jpg")).enhance(0.15), RULES)
    assert "badly_exposed" in report.codes
    assert "too dark" in next(i.message for i in report.issues if i.code == "badly_exposed")
    # Sharpness is brightness-normalised: a dark photo is not also called blurry.
    assert "blurry" not in report.codes


def test_overexposed_copy_is_badly_exposed() -> None:
    report = analyse_face(ImageEnhance.Brightness(load("person_a_01.jpg")).enhance(2.2), RULES)
    assert "badly_exposed" in report.codes
    assert "overexposed" in next(i.message for i in report.issues if i.code == "badly_exposed")


def test_gradient_has_no_face() -> None:
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    report = analyse_face(Image.fromarray(np.stack([gradient] * 3, axis=-1)), RULES)
    assert report.codes == ("no_face",)
    assert report.main_box is None and report.embedding is None


def test_speed_per_photo() -> None:
    image = load("person_a_04.jpg")  # 1434x2333, the largest single portrait
    analyse_face(image, RULES)  # models loaded
    start = time.perf_counter()
    analyse_face(image, RULES)
    assert time.perf_counter() - start < 1.5  # measured ~0.2 s on one core; generous for slow CI


# ---------------------------------------------------------------------------------------------- identity


def _variants(name: str) -> dict[str, Image.Image]:
    image = load(name)
    w, h = image.size
    return {
        name: image,
        f"{name}:flip": ImageOps.mirror(image),
        f"{name}:crop": image.crop((w // 12, h // 20, w - w // 12, h - h // 10)),
        f"{name}:warm": ImageEnhance.Color(image).enhance(1.3),
        f"{name}:contrast": ImageEnhance.Contrast(image).enhance(0.85),
    }


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    images: dict[str, Image.Image] = {}
    for name in ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"]:
        images.update(_variants(name))
    images["person_b_01.jpg"] = load("person_b_01.jpg")
    result = {}
    for key, image in images.items():
        report = analyse_face(image, RULES)
        assert report.embedding is not None, key
        result[key] = report.embedding
    return result


def test_same_person_close_other_person_far(embeddings: dict[str, np.ndarray]) -> None:
    a_keys = [k for k in embeddings if k.startswith("person_a")]
    a_to_a = [float(np.linalg.norm(embeddings[x] - embeddings[y])) for x in a_keys for y in a_keys if x < y]
    a_to_b = [float(np.linalg.norm(embeddings[x] - embeddings["person_b_01.jpg"])) for x in a_keys]
    print(f"A-A {min(a_to_a):.3f}-{max(a_to_a):.3f}  A-B {min(a_to_b):.3f}-{max(a_to_b):.3f}")
    assert max(a_to_a) < 0.6
    assert min(a_to_b) > 0.6


def test_only_the_other_person_is_flagged(embeddings: dict[str, np.ndarray]) -> None:
    assert len(embeddings) == 21
    outliers = identity_outliers(embeddings)
    assert list(outliers) == ["person_b_01.jpg"]
    assert outliers["person_b_01.jpg"] > 0.6
    distances = identity_distances(embeddings)
    print({k: round(v, 3) for k, v in distances.items()})
    assert max(d for k, d in distances.items() if k.startswith("person_a")) < 0.6


def test_robust_centre_resists_a_minority(embeddings: dict[str, np.ndarray]) -> None:
    a_only = [e for k, e in embeddings.items() if k.startswith("person_a")]
    with_b = list(embeddings.values())
    assert float(np.linalg.norm(robust_centre(a_only) - robust_centre(with_b))) < 0.05


def test_fewer_than_three_photos_flag_nothing(embeddings: dict[str, np.ndarray]) -> None:
    pair = {k: embeddings[k] for k in ["person_a_01.jpg", "person_b_01.jpg"]}
    assert identity_outliers(pair) == {}
    assert identity_outliers({}) == {}
    trio = {k: embeddings[k] for k in ["person_a_01.jpg", "person_a_02.jpg", "person_b_01.jpg"]}
    assert list(identity_outliers(trio)) == ["person_b_01.jpg"]
