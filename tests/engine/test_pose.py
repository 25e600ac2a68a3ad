"""Pose from a photo (engine.pose): BlazePose (mediapipe) on the real photos in shared/fixtures/faces, the
OpenPose skeleton drawing and the skeleton recogniser."""

from __future__ import annotations

import importlib.util
import io
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from engine import pose
from engine.pose import (
    COLOURS,
    NO_PERSON_MESSAGE,
    OPENPOSE_KEYPOINTS,
    Keypoint,
    PoseNotFound,
    detect_keypoints,
    draw_bodypose,
    is_pose_skeleton,
    openpose_keypoints,
    pose_control_image,
    pose_skeleton,
)
from tests.face_fixtures import FACES

needs_mediapipe = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed (make install)"
)
needs_faces = pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}")

K = {name: i for i, name in enumerate(OPENPOSE_KEYPOINTS)}


def load(name: str) -> Image.Image:
    with Image.open(FACES / name) as image:
        image.load()
        return image


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def no_person() -> Image.Image:
    """A generated image with nobody in it: a colour gradient with seeded noise."""
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 200, 640, dtype=np.float64)
    pixels = np.stack([np.tile(ramp, (480, 1)), np.tile(ramp[::-1], (480, 1)), np.full((480, 640), 90.0)], axis=2)
    pixels += rng.normal(0, 25, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


STANDING = [
    Keypoint(0.50, 0.15),  # nose
    Keypoint(0.50, 0.28),  # neck
    Keypoint(0.38, 0.28),  # right shoulder (the image's left)
    Keypoint(0.33, 0.45),
    Keypoint(0.30, 0.60),
    Keypoint(0.62, 0.28),  # left shoulder
    Keypoint(0.67, 0.45),
    Keypoint(0.70, 0.60),
    Keypoint(0.44, 0.58),
    Keypoint(0.44, 0.75),
    Keypoint(0.44, 0.92),
    Keypoint(0.56, 0.58),
    Keypoint(0.56, 0.75),
    Keypoint(0.56, 0.92),
    Keypoint(0.47, 0.13),  # right eye
    Keypoint(0.53, 0.13),
    Keypoint(0.44, 0.14),  # right ear
    Keypoint(0.56, 0.14),
]


# ------------------------------------------------------------------------------------------------ the mapping


def test_mapping_is_openpose_coco_order_from_blazepose() -> None:
    """The 18 keypoints are ControlNet's OpenPose (COCO) order, each from the BlazePose landmark of the same
    body part (the neck from both shoulders)."""
    assert OPENPOSE_KEYPOINTS[:2] == ("nose", "neck") and len(OPENPOSE_KEYPOINTS) == 18
    expected = {
        "nose": (0,),
        "neck": (11, 12),
        "right_shoulder": (12,),
        "right_elbow": (14,),
        "right_wrist": (16,),
        "left_shoulder": (11,),
        "left_elbow": (13,),
        "left_wrist": (15,),
        "right_hip": (24,),
        "right_knee": (26,),
        "right_ankle": (28,),
        "left_hip": (23,),
        "left_knee": (25,),
        "left_ankle": (27,),
        "right_eye": (5,),
        "left_eye": (2,),
        "right_ear": (8,),
        "left_ear": (7,),
    }
    assert dict(zip(OPENPOSE_KEYPOINTS, pose.BLAZEPOSE_TO_OPENPOSE, strict=True)) == expected


@needs_mediapipe
def test_mapping_matches_mediapipes_own_landmark_names() -> None:
    """Every BlazePose index used is the landmark mediapipe itself names that way (PoseLandmark)."""
    landmark = pose._pose_module().PoseLandmark
    for name, sources in zip(OPENPOSE_KEYPOINTS, pose.BLAZEPOSE_TO_OPENPOSE, strict=True):
        if name == "neck":
            assert {landmark(i).name for i in sources} == {"LEFT_SHOULDER", "RIGHT_SHOULDER"}
        else:
            assert [landmark(i).name for i in sources] == [name.upper()]


def test_keypoints_from_landmarks_visibility_frame_and_neck() -> None:
    """Each keypoint takes its landmark's position; a landmark under 0.5 visibility or outside the image is
    left out; the neck is the shoulders' midpoint and is left out when a shoulder is not visible."""
    landmarks = [SimpleNamespace(x=i / 64, y=1 - i / 64, visibility=1.0) for i in range(33)]
    keypoints = openpose_keypoints(landmarks)
    assert keypoints[K["nose"]] == Keypoint(0.0, 1.0)
    assert keypoints[K["right_eye"]] == Keypoint(5 / 64, 59 / 64)
    assert keypoints[K["left_ankle"]] == Keypoint(27 / 64, 37 / 64)
    assert keypoints[K["neck"]] == Keypoint(11.5 / 64, 52.5 / 64)

    landmarks[12].visibility = 0.49  # right shoulder
    landmarks[7] = SimpleNamespace(x=1.02, y=0.5, visibility=0.99)  # left ear, out of the frame
    keypoints = openpose_keypoints(landmarks)
    assert keypoints[K["right_shoulder"]] is None and keypoints[K["neck"]] is None
    assert keypoints[K["left_ear"]] is None
    assert keypoints[K["left_shoulder"]] == Keypoint(11 / 64, 53 / 64)


# ------------------------------------------------------------------------------------------------ drawing


def test_drawing_is_controlnet_auxs_bodypose() -> None:
    """Joints in their full colour, limbs in 60 % of theirs (neck→nose is limb 13: blue), black elsewhere, at
    the requested size; a missing keypoint draws neither its joint nor its limbs."""
    keypoints: list[Keypoint | None] = [None] * 18
    keypoints[K["nose"]] = Keypoint(0.5, 0.2)
    keypoints[K["neck"]] = Keypoint(0.5, 0.6)
    skeleton = draw_bodypose((400, 300), keypoints)
    assert skeleton.size == (400, 300) and skeleton.mode == "RGB"
    assert skeleton.getpixel((200, 60)) == COLOURS[0]  # the nose: red
    assert skeleton.getpixel((200, 180)) == COLOURS[1]  # the neck
    assert skeleton.getpixel((200, 120)) == (0, 0, 153)  # the limb between them: 0.6 × COLOURS[12]
    assert skeleton.getpixel((100, 120)) == (0, 0, 0)
    colours = {c for _n, c in skeleton.getcolors(maxcolors=1000)}
    assert colours == {(0, 0, 0), COLOURS[0], COLOURS[1], (0, 0, 153)}


def test_strokes_scale_with_the_image() -> None:
    """controlnet_aux's 4 px strokes on a 512 px image keep their proportion on a larger one."""
    keypoints: list[Keypoint | None] = [None] * 18
    keypoints[K["nose"]] = Keypoint(0.5, 0.5)

    def disc_width(side: int) -> int:
        row = np.asarray(draw_bodypose((side, side), keypoints))[side // 2]
        return int((row.max(axis=1) > 0).sum())

    assert disc_width(512) == 9
    assert disc_width(2048) == 33


# ------------------------------------------------------------------------------------------------ recognising


def test_a_generated_skeleton_is_recognised_also_resized_and_as_jpeg() -> None:
    skeleton = draw_bodypose((768, 1024), STANDING)
    assert is_pose_skeleton(skeleton)
    assert is_pose_skeleton(jpeg(skeleton, 70))
    assert is_pose_skeleton(skeleton.resize((384, 512), Image.Resampling.BILINEAR))
    assert is_pose_skeleton(skeleton.convert("RGBA"))
    assert pose_control_image(skeleton) is skeleton


@needs_faces
@pytest.mark.parametrize("name", ["person_a_01.jpg", "person_b_02.jpg", "two_people.jpg", "person_a_08_rgba.png"])
def test_a_photo_is_not_a_skeleton(name: str) -> None:
    photo = load(name)
    assert not is_pose_skeleton(photo)
    assert not is_pose_skeleton(photo.convert("RGB").point(lambda v: v // 6))  # a very dark photo neither


def test_plain_and_generated_images_are_not_skeletons() -> None:
    text = Image.new("RGB", (512, 512))
    ImageDraw.Draw(text).text((20, 20), "OpenPose", fill=(255, 255, 255))
    disc = Image.new("RGB", (512, 512))
    ImageDraw.Draw(disc).ellipse((100, 100, 300, 300), fill=(255, 0, 0))
    for image in (Image.new("RGB", (512, 512)), Image.new("RGB", (512, 512), "white"), text, disc, no_person()):
        assert not is_pose_skeleton(image)


# ------------------------------------------------------------------------------------------------ detection


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    if not FACES.is_dir():
        pytest.skip(f"face fixtures missing at {FACES}")
    return load("person_a_01.jpg")


@needs_mediapipe
def test_skeleton_of_a_portrait_has_its_joints_in_place_and_colour(portrait: Image.Image) -> None:
    """person_a_01 (head and shoulders, arms crossed): nose, eyes, ears, neck and shoulders are found where the
    face and the body are, the person's right on the image's left; each is drawn in its OpenPose colour."""
    keypoints = detect_keypoints(portrait)
    found = {name for name, k in zip(OPENPOSE_KEYPOINTS, keypoints, strict=True) if k is not None}
    assert {"nose", "neck", "right_eye", "left_eye", "right_ear", "left_ear"} <= found
    assert {"right_shoulder", "left_shoulder"} <= found
    assert not {"right_ankle", "left_ankle", "right_knee", "left_knee"} & found  # out of the frame
    kp = {name: k for name, k in zip(OPENPOSE_KEYPOINTS, keypoints, strict=True) if k is not None}
    assert kp["right_eye"].x < kp["nose"].x < kp["left_eye"].x
    assert kp["right_ear"].x < kp["right_eye"].x and kp["left_eye"].x < kp["left_ear"].x
    assert max(kp["right_eye"].y, kp["left_eye"].y) < kp["nose"].y < kp["neck"].y
    assert kp["right_shoulder"].x < kp["neck"].x < kp["left_shoulder"].x
    assert kp["neck"] == pytest.approx(
        Keypoint(
            (kp["right_shoulder"].x + kp["left_shoulder"].x) / 2, (kp["right_shoulder"].y + kp["left_shoulder"].y) / 2
        )
    )
    assert kp["left_shoulder"].x - kp["right_shoulder"].x > 0.3  # the shoulders span the frame

    skeleton = pose_skeleton(portrait)
    assert skeleton.size == portrait.size
    for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_eye", "left_eye", "right_ear", "left_ear"):
        k = kp[name]
        assert skeleton.getpixel((int(k.x * portrait.width), int(k.y * portrait.height))) == COLOURS[K[name]], name
    assert skeleton.getpixel((5, 5)) == (0, 0, 0)
    assert is_pose_skeleton(skeleton)
    assert pose_control_image(portrait).tobytes() == skeleton.tobytes()


@needs_mediapipe
def test_the_face_keypoints_lie_in_dlibs_face_box(portrait: Image.Image) -> None:
    """Cross-check with the intake's face detector: nose and eyes inside the face box, shoulders below it and
    either side of it."""
    pytest.importorskip("dlib")
    from engine.faces import detect_faces

    box = detect_faces(portrait.convert("RGB"))[0]
    w, h = portrait.size
    kp = dict(zip(OPENPOSE_KEYPOINTS, detect_keypoints(portrait), strict=True))
    for name in ("nose", "right_eye", "left_eye"):
        assert box.left < kp[name].x * w < box.right and box.top < kp[name].y * h < box.bottom, name
    assert kp["right_shoulder"].x * w < box.left and kp["left_shoulder"].x * w > box.right
    assert min(kp["right_shoulder"].y, kp["left_shoulder"].y) * h > box.bottom


@needs_mediapipe
def test_exif_orientation_is_applied(portrait: Image.Image) -> None:
    """A phone photo stored sideways with an EXIF orientation: the skeleton is upright, at the upright size."""
    sideways = portrait.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=90, exif=exif)
    buffer.seek(0)
    stored = Image.open(buffer)
    assert stored.size == (portrait.height, portrait.width)
    assert ImageOps.exif_transpose(stored).size == portrait.size
    skeleton = pose_skeleton(stored)
    assert skeleton.size == portrait.size
    kp = dict(zip(OPENPOSE_KEYPOINTS, detect_keypoints(stored), strict=True))
    assert kp["nose"].y < kp["neck"].y and kp["right_shoulder"].x < kp["left_shoulder"].x


@needs_mediapipe
def test_no_person_raises_pose_not_found_with_a_message() -> None:
    image = no_person()
    with pytest.raises(PoseNotFound) as raised:
        pose_skeleton(image)
    assert str(raised.value) == NO_PERSON_MESSAGE
    assert isinstance(raised.value, ValueError)
    with pytest.raises(PoseNotFound, match="No person was found in this photo"):
        pose_control_image(image)


@needs_mediapipe
def test_only_the_bundled_landmark_model_is_used() -> None:
    """mediapipe downloads the lite and heavy landmark models at run time: refused; the full one is bundled."""
    assert pose.bundled_model_complexities() == (1,)
    for complexity in (0, 2):
        with pytest.raises(ValueError, match="would be downloaded at run time"):
            pose_skeleton(no_person(), model_complexity=complexity)


@needs_mediapipe
def test_detection_is_shared_and_thread_safe(portrait: Image.Image) -> None:
    """One detector per process, used by several threads at once: the same skeleton for each."""
    small = portrait.convert("RGB").resize((455, 568))
    expected = pose_skeleton(small).tobytes()
    detector = pose._detector(1)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(pose_skeleton(small).tobytes())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4
    assert pose._detector(1) is detector


@needs_mediapipe
def test_matplotlib_is_not_left_behind() -> None:
    """mediapipe's import needs matplotlib.pyplot to exist; the placeholder is gone once it is imported."""
    pose._pose_module()
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib" not in sys.modules and "matplotlib.pyplot" not in sys.modules


def test_without_mediapipe_a_photo_asks_for_a_skeleton(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where mediapipe can't be imported, a photo is refused with a message asking for a skeleton image, and a
    skeleton image still passes."""
    for name in ["mediapipe", *(m for m in sys.modules if m.startswith("mediapipe."))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(pose, "_pose_module_cache", [])
    monkeypatch.setattr(pose, "_detectors", {})
    with pytest.raises(PoseNotFound, match="Upload an OpenPose skeleton image: this platform can't detect poses"):
        pose_control_image(no_person())
    skeleton = draw_bodypose((512, 512), STANDING)
    assert pose_control_image(skeleton) is skeleton
