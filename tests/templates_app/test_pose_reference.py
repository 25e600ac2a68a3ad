"""Pose from a photo in the designer: a "pose" version's reference image is an OpenPose skeleton (taken as it is)
or a photo of a person whose skeleton is taken from it (engine.pose, MediaPipe's BlazePose, run for real on
shared/fixtures/faces); a photo without a person is refused on `reference_image`, on the page and in the API; the
photographer sees the skeleton beside the photo (template_version_pose, a PNG under the template's pages)."""

from __future__ import annotations

import dataclasses
import html as html_lib
import importlib.util
import io
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import Image

from engine.pose import (
    COLOURS,
    NO_PERSON_MESSAGE,
    Keypoint,
    PoseNotFound,
    detect_keypoints,
    draw_bodypose,
    is_pose_skeleton,
)
from templates_app import pose_references, render_settings, versions
from templates_app.errors import SettingsInvalid
from templates_app.models import Template, TemplateVersion
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.templates_app.conftest import SETTINGS, reload

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed"),
    pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}"),
]

# person_a_01.jpg (910 x 1137, head and shoulders): dlib's face box is (361, 134, 617, 389).
PHOTO = "person_a_01.jpg"
FACE_BOX = (361, 134, 617, 389)
ARMS_OUT = [
    Keypoint(0.50, 0.14),  # nose
    Keypoint(0.50, 0.27),  # neck
    Keypoint(0.38, 0.27),  # right shoulder
    Keypoint(0.25, 0.38),
    Keypoint(0.12, 0.30),
    Keypoint(0.62, 0.27),  # left shoulder
    Keypoint(0.75, 0.38),
    Keypoint(0.88, 0.30),
    Keypoint(0.44, 0.57),
    Keypoint(0.44, 0.75),
    Keypoint(0.44, 0.92),
    Keypoint(0.56, 0.57),
    Keypoint(0.56, 0.75),
    Keypoint(0.56, 0.92),
    Keypoint(0.47, 0.12),  # right eye
    Keypoint(0.53, 0.12),
    Keypoint(0.44, 0.13),  # right ear
    Keypoint(0.56, 0.13),
]


@pytest.fixture(autouse=True)
def pose_controlnet(settings: Any, registry: Any) -> None:
    """The operator has a pose ControlNet (the templates' conftest has none)."""
    settings.ENGINE_CONTROLNETS = {"pose": "/models/controlnet-openpose"}


def photo_upload(name: str = PHOTO) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (FACES / name).read_bytes(), content_type="image/jpeg")


def png_upload(image: Image.Image, name: str = "upload.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def no_person(size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A generated image with nobody in it: a colour gradient with seeded noise."""
    width, height = size
    rng = np.random.default_rng(11)
    ramp = np.linspace(0, 220, width)
    pixels = np.stack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)), np.full((height, width), 80.0)], 2)
    pixels += rng.normal(0, 20, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def skeleton(size: tuple[int, int] = (768, 1024)) -> Image.Image:
    return draw_bodypose(size, ARMS_OUT)


def errors(tenant: Tenant, **changes: Any) -> dict[str, list[str]]:
    with tenant_context(tenant.studio), pytest.raises(SettingsInvalid) as caught:
        render_settings.clean_settings(data={**SETTINGS, **changes})
    return caught.value.errors


def pose_template(tenant: Tenant, upload: Any = None, name: str = "Arms crossed") -> Template:
    with tenant_context(tenant.studio):
        return versions.create_template(
            name=name,
            settings={**SETTINGS, "reference_mode": "pose", "reference_image": upload or photo_upload()},
            user=tenant.owner,
        )


def page(tenant: Tenant, path: str) -> str:
    return f"{tenant.prefix}/templates/{path}"


def pose_url(tenant: Tenant, template: Template) -> str:
    return page(tenant, f"{template.pk}/versions/{template.current_version_id}/pose.png")


def stored(tenant: Tenant, template: Template) -> Image.Image:
    version = reload(tenant, template).current_version
    with version.reference_image.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image.convert("RGB")


def png(response: Any) -> Image.Image:
    assert response.status_code == 200 and response["Content-Type"] == "image/png", response
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def text(response: Any) -> str:
    return html_lib.unescape(response.content.decode())


# --- the upload check -----------------------------------------------------------------------------------------


def test_a_photo_of_a_person_is_accepted_and_its_preview_is_its_skeleton(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a)
    photo = stored(tenant_a, template)
    assert photo.size == (910, 1137)  # the photo is stored, not its skeleton: the engine takes it at render time
    assert not is_pose_skeleton(photo)
    response = client_a.get(pose_url(tenant_a, template))
    assert response["Cache-Control"].startswith("private")
    preview = png(response)
    assert preview.size == photo.size  # under the preview's 1280 px: not scaled
    assert is_pose_skeleton(preview)
    # The nose (OpenPose's first keypoint, pure red) is drawn inside the face, the rest of the frame's top is black.
    pixels = np.asarray(preview)
    left, top, right, bottom = FACE_BOX
    face = pixels[top:bottom, left:right]
    assert (face == COLOURS[0]).all(axis=2).sum() > 20
    assert (pixels[:60] == 0).all()


def test_a_large_photo_has_a_preview_of_at_most_1280_px(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a, photo_upload("person_a_04.jpg"), name="Standing")
    photo = stored(tenant_a, template)
    assert max(photo.size) == render_settings.REFERENCE_MAX_SIDE
    preview = png(client_a.get(pose_url(tenant_a, template)))
    assert max(preview.size) == 1280
    assert preview.size == pose_references.preview_size(photo.size)
    assert abs(preview.width / preview.height - photo.width / photo.height) < 0.01
    assert is_pose_skeleton(preview)


@pytest.mark.parametrize(
    "image",
    [no_person(), Image.new("RGB", (512, 512), (128, 128, 128))],
    ids=["gradient", "plain"],
)
def test_an_image_without_a_person_is_refused_on_its_field(tenant_a: Tenant, image: Image.Image):
    found = errors(tenant_a, reference_mode="pose", reference_image=png_upload(image))
    assert found == {"reference_image": [NO_PERSON_MESSAGE]}
    assert found["reference_image"][0].startswith("No person was found in this photo")


def test_the_same_image_is_fine_for_composition(tenant_a: Tenant):
    """The check is the pose mode's: img2img takes any picture."""
    with tenant_context(tenant_a.studio):
        checked = render_settings.clean_settings(
            data={**SETTINGS, "reference_mode": "img2img", "reference_image": png_upload(no_person())}
        )
    assert checked.reference_upload is not None


def test_a_skeleton_image_is_accepted_and_shown_as_it_is(client_a: Any, tenant_a: Tenant):
    drawn = skeleton()
    with pytest.raises(PoseNotFound):  # nobody is in a skeleton: had it gone through detection, it was refused
        detect_keypoints(drawn)
    template = pose_template(tenant_a, png_upload(drawn), name="Arms out")
    kept = stored(tenant_a, template)
    assert kept.size == drawn.size
    assert np.abs(np.asarray(kept, dtype=np.int16) - np.asarray(drawn, dtype=np.int16)).mean() < 2  # a clean JPEG
    preview = png(client_a.get(pose_url(tenant_a, template)))
    assert np.array_equal(np.asarray(preview), np.asarray(kept))  # the upload itself, not a skeleton of it
    found = pose_references.stored_pose(reload(tenant_a, template).current_version.reference_image.name)
    assert found.skeleton_uploaded and found.keypoints is None


def test_a_large_skeleton_is_shown_scaled_to_1280_px(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a, png_upload(skeleton((1536, 2048))), name="Tall")
    preview = png(client_a.get(pose_url(tenant_a, template)))
    assert preview.size == (960, 1280)
    assert is_pose_skeleton(preview)


def test_switching_to_the_pose_mode_checks_the_kept_image(tenant_a: Tenant, make_template):
    empty = make_template("Gradient", reference_mode="img2img", reference_image=png_upload(no_person()))
    with tenant_context(tenant_a.studio), pytest.raises(SettingsInvalid) as caught:
        versions.save_template(template=empty, settings={"reference_mode": "pose"})
    assert caught.value.errors == {"reference_image": [NO_PERSON_MESSAGE]}

    portrait = make_template("Portrait", reference_mode="img2img", reference_image=photo_upload())
    with tenant_context(tenant_a.studio):
        saved = versions.save_template(template=portrait, settings={"reference_mode": "pose"})
        v1 = TemplateVersion.objects.get(template=portrait, number=1)
    assert saved.created and saved.version.reference_mode == "pose"
    assert saved.version.reference_image.name == v1.reference_image.name  # the same stored file


def test_a_pose_versions_own_image_is_not_checked_again(tenant_a: Tenant):
    """Versions never change: a pose version whose image shows nobody (made past the check, as if the detector
    had changed) keeps it when other settings change."""
    with tenant_context(tenant_a.studio):
        checked = render_settings.clean_settings(
            data={**SETTINGS, "reference_mode": "img2img", "reference_image": png_upload(no_person())}
        )
        template = versions.create_template(
            name="Empty room", settings=dataclasses.replace(checked, reference_mode="pose"), user=tenant_a.owner
        )
        saved = versions.save_template(template=template, settings={"steps": 20})
    assert saved.created and saved.version.reference_mode == "pose"


def test_without_the_pose_controlnet_only_the_mode_is_refused(tenant_a: Tenant, settings: Any):
    settings.ENGINE_CONTROLNETS = {}
    found = errors(tenant_a, reference_mode="pose", reference_image=png_upload(no_person()))
    assert set(found) == {"reference_mode"}
    assert "needs a ControlNet model for pose" in found["reference_mode"][0]


def test_a_stored_image_is_looked_at_once(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a)
    name = reload(tenant_a, template).current_version.reference_image.name
    before = pose_references._stored_pose.cache_info()
    for _ in range(2):
        assert client_a.get(page(tenant_a, f"{template.pk}/")).status_code == 200
        assert client_a.get(pose_url(tenant_a, template)).status_code == 200
    after = pose_references._stored_pose.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 3
    assert pose_references.stored_pose(name).keypoints is not None


# --- the pages ------------------------------------------------------------------------------------------------


def test_the_designer_shows_the_photo_beside_its_pose(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a)
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert f'src="{pose_url(tenant_a, template)}"' in html
    assert 'alt="The reference photo of version 1, as the photographer uploaded it"' in html
    assert 'alt="The pose the portraits will take: the OpenPose skeleton of the person in the reference photo' in html
    assert "The pose the portraits will take</figcaption>" in html


def test_the_designer_shows_an_uploaded_skeleton_once(client_a: Any, tenant_a: Tenant):
    template = pose_template(tenant_a, png_upload(skeleton()), name="Arms out")
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert f'src="{pose_url(tenant_a, template)}"' in html
    assert "the OpenPose skeleton uploaded as the reference of version 1" in html
    assert "The reference photo of version 1" not in html


def test_staff_see_the_pose_in_the_version_details(staff_client: Any, tenant_a: Tenant):
    template = pose_template(tenant_a)
    with tenant_context(tenant_a.studio):
        versions.publish(template=template)
    html = text(staff_client.get(page(tenant_a, f"{template.pk}/")))
    details = html[html.index('<dl class="details">') :]
    assert "Pose (ControlNet)" in details
    assert f'src="{pose_url(tenant_a, template)}"' in details
    assert "The pose the portraits will take" in details
    assert staff_client.get(pose_url(tenant_a, template)).status_code == 200


def test_a_pose_version_without_a_person_says_so(client_a: Any, tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        checked = render_settings.clean_settings(
            data={**SETTINGS, "reference_mode": "img2img", "reference_image": png_upload(no_person())}
        )
        template = versions.create_template(
            name="Empty room", settings=dataclasses.replace(checked, reference_mode="pose"), user=tenant_a.owner
        )
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert NO_PERSON_MESSAGE in html
    assert "pose.png" not in html
    assert client_a.get(pose_url(tenant_a, template)).status_code == 404


def test_the_pose_is_404_for_another_mode_or_another_studio(
    client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template
):
    assert client_a.get(pose_url(tenant_a, make_template())).status_code == 404
    composed = make_template("Composed", reference_mode="img2img", reference_image=photo_upload())
    assert client_a.get(pose_url(tenant_a, composed)).status_code == 404
    with tenant_context(tenant_a.studio):
        photo = versions.create_template(
            name="Window light",
            settings={**SETTINGS, "reference_mode": "photo", "reference_image": photo_upload()},
            user=tenant_a.owner,
        )
    assert client_a.get(pose_url(tenant_a, photo)).status_code == 404
    theirs = pose_template(tenant_b)
    assert client_a.get(pose_url(tenant_a, theirs)).status_code == 404
    assert client_a.post(pose_url(tenant_a, theirs)).status_code == 404
    ours = pose_template(tenant_a)
    assert client_a.get(pose_url(tenant_a, ours)).status_code == 200
    assert client_a.post(pose_url(tenant_a, ours)).status_code == 405


def test_the_designer_form_refuses_a_photo_without_a_person(client_a: Any, tenant_a: Tenant, make_template):
    from tests.templates_app.test_views import form_data

    template = make_template()
    data = {**form_data(template), "reference_mode": "pose", "reference_image": png_upload(no_person())}
    response = client_a.post(page(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 400
    assert NO_PERSON_MESSAGE in text(response)
    assert reload(tenant_a, template).current_version.number == 1


# --- the API --------------------------------------------------------------------------------------------------


def test_the_api_takes_a_pose_photo_and_refuses_one_without_a_person(client_a: Any, tenant_a: Tenant):
    url = f"{tenant_a.prefix}/api/templates/"
    data = {"name": "Pose", **SETTINGS, "reference_mode": "pose"}
    accepted = client_a.post(url, {**data, "reference_image": photo_upload()})
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["current_version"]["reference_mode"] == "pose"
    refused = client_a.post(url, {**data, "name": "Nobody", "reference_image": png_upload(no_person())})
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"reference_image": [NO_PERSON_MESSAGE]}
    template_id = accepted.json()["id"]
    body = encode_multipart(BOUNDARY, {"reference_image": png_upload(no_person())})
    patched = client_a.patch(f"{url}{template_id}/", body, content_type=MULTIPART_CONTENT)
    assert patched.status_code == 400
    assert patched.json()["error"]["fields"] == {"reference_image": [NO_PERSON_MESSAGE]}
