"""The finishing settings of a version (face pass, print size, the soft face mask) and the template photo mode:
their checks and defaults, the designer and the version details, the mask the photographer sees over the
template photo, the API and the starters. Face detection runs for real (dlib) on shared/fixtures/faces."""

from __future__ import annotations

import dataclasses
import html as html_lib
import io
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from templates_app import render_settings, selectors, template_photos, versions
from templates_app.errors import SettingsInvalid
from templates_app.models import Template, TemplateVersion
from templates_app.starters import STARTERS
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.templates_app.conftest import SETTINGS, image_bytes, image_upload, reload

pytestmark = pytest.mark.django_db

FINISHING = (
    "face_pass",
    "face_denoise",
    "face_identity_weight",
    "long_side",
    "upscale_denoise",
    "mask_margin",
    "mask_feather",
)
# person_a_01.jpg (910 x 1137): dlib finds one face at (361, 134, 617, 389).
FACE_PHOTO = "person_a_01.jpg"


def face_upload(name: str = FACE_PHOTO) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (FACES / name).read_bytes(), content_type="image/jpeg")


def errors(tenant: Tenant, **changes: Any) -> dict[str, list[str]]:
    with tenant_context(tenant.studio), pytest.raises(SettingsInvalid) as caught:
        render_settings.clean_settings(data={**SETTINGS, **changes})
    return caught.value.errors


def clean(tenant: Tenant, **changes: Any) -> render_settings.RenderSettings:
    with tenant_context(tenant.studio):
        return render_settings.clean_settings(data={**SETTINGS, **changes})


def text(response: Any) -> str:
    return html_lib.unescape(response.content.decode())


def photo_template(tenant: Tenant, name: str = "Window light") -> Template:
    with tenant_context(tenant.studio):
        return versions.create_template(
            name=name,
            settings={**SETTINGS, "reference_mode": "photo", "reference_image": face_upload()},
            user=tenant.owner,
        )


def faceless_photo_template(tenant: Tenant) -> Template:
    """A photo-mode version whose photo has no face (made past the check: as if the detector had changed)."""
    with tenant_context(tenant.studio):
        checked = render_settings.clean_settings(
            data={**SETTINGS, "reference_mode": "img2img", "reference_image": image_upload()}
        )
        return versions.create_template(
            name="Empty room", settings=dataclasses.replace(checked, reference_mode="photo"), user=tenant.owner
        )


def page(tenant: Tenant, path: str) -> str:
    return f"{tenant.prefix}/templates/{path}"


def mask_url(tenant: Tenant, template: Template) -> str:
    return page(tenant, f"{template.pk}/versions/{template.current_version_id}/mask.png")


# --- defaults and checks --------------------------------------------------------------------------------------


def test_a_new_version_gets_the_finishing_defaults(tenant_a: Tenant, make_template):
    version = reload(tenant_a, make_template()).current_version
    values = {name: getattr(version, name) for name in FINISHING}
    assert values == {
        "face_pass": True,
        "face_denoise": 0.4,
        "face_identity_weight": 1.0,
        "long_side": 3000,
        "upscale_denoise": 0.25,
        "mask_margin": 0.3,
        "mask_feather": 0.15,
    }


def test_finishing_values_are_kept_and_make_a_new_version(tenant_a: Tenant, make_template):
    template = make_template()
    changes = {
        "face_pass": False,
        "face_denoise": "0.55",
        "face_identity_weight": 1.25,
        "long_side": "0",
        "upscale_denoise": 0,
        "mask_margin": "0.5",
        "mask_feather": 0,
    }
    with tenant_context(tenant_a.studio):
        saved = versions.save_template(template=template, settings=changes)
        again = versions.save_template(template=template, settings=changes)
    assert saved.created and saved.version.number == 2 and not again.created
    version = reload(tenant_a, template).current_version
    assert [getattr(version, name) for name in FINISHING] == [False, 0.55, 1.25, 0, 0.0, 0.5, 0.0]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"face_denoise": 0.01}, "face_denoise", "The face pass denoise must be between 0.05 and 1."),
        ({"face_denoise": ""}, "face_denoise", "Enter the face pass denoise."),
        (
            {"face_identity_weight": 2.5},
            "face_identity_weight",
            "The face pass identity weight must be between 0 and 2.",
        ),
        ({"face_identity_weight": "much"}, "face_identity_weight", "The face pass identity weight must be a number."),
        ({"long_side": 100}, "long_side", "The print long side must be 0 (the render's own size) or a whole number"),
        ({"long_side": 9000}, "long_side", "between 512 and 8192"),
        ({"long_side": "big"}, "long_side", "between 512 and 8192"),
        ({"long_side": 3000.5}, "long_side", "between 512 and 8192"),
        ({"long_side": ""}, "long_side", "Enter the print long side"),
        ({"upscale_denoise": 0.7}, "upscale_denoise", "The upscale denoise must be between 0 and 0.6."),
        ({"mask_margin": 1.5}, "mask_margin", "The face mask margin must be between 0 and 1."),
        ({"mask_feather": -0.1}, "mask_feather", "The face mask feather must be between 0 and 1."),
        ({"face_pass": "maybe"}, "face_pass", "Say whether the face pass runs: true or false."),
    ],
)
def test_each_bad_finishing_value_has_its_message(tenant_a: Tenant, changes: dict[str, Any], field: str, message: str):
    found = errors(tenant_a, **changes)
    assert set(found) == {field}, found
    assert message in found[field][0], found[field]


@pytest.mark.parametrize("long_side", [0, 512, "8192", 3000.0])
def test_the_print_long_side_is_zero_or_512_to_8192(tenant_a: Tenant, long_side: Any):
    assert clean(tenant_a, long_side=long_side).long_side == int(float(long_side))


def test_the_face_pass_reads_form_and_api_values(tenant_a: Tenant):
    assert clean(tenant_a, face_pass="on").face_pass is True
    assert clean(tenant_a, face_pass="false").face_pass is False
    assert clean(tenant_a, face_pass=False).face_pass is False


# --- the template photo mode ----------------------------------------------------------------------------------


def test_a_template_photo_with_a_face_is_kept_larger_than_a_reference_image(tenant_a: Tenant):
    photo = clean(tenant_a, reference_mode="photo", reference_image=face_upload("person_a_04.jpg"))
    assert photo.reference_mode == "photo"
    assert Image.open(io.BytesIO(photo.reference_upload)).size == (1434, 2333)  # up to 4096 px: as uploaded
    reference = clean(tenant_a, reference_mode="img2img", reference_image=face_upload("person_a_04.jpg"))
    assert max(Image.open(io.BytesIO(reference.reference_upload)).size) == render_settings.REFERENCE_MAX_SIDE


def test_a_template_photo_without_a_face_is_refused_on_its_field(tenant_a: Tenant):
    found = errors(tenant_a, reference_mode="photo", reference_image=image_upload())
    assert found == {"reference_image": [template_photos.NO_FACE_MESSAGE]}
    assert found["reference_image"][0].startswith("No face was found in the template photo: use a photo where")
    assert f"at least {template_photos.PHOTO_MIN_FACE_PX} px" in found["reference_image"][0]


def test_a_face_smaller_than_the_minimum_does_not_count():
    from engine.faces import detect_faces

    source = Image.open(FACES / FACE_PHOTO).convert("RGB")
    small = Image.new("RGB", (600, 600), (200, 200, 200))
    small.paste(source.resize((228, 284)), (150, 100))  # dlib still finds the face: about 76 px
    found = detect_faces(small)
    assert len(found) == 1 and max(found[0].width, found[0].height) < template_photos.PHOTO_MIN_FACE_PX
    assert template_photos.face_boxes(small) == ()
    large = Image.new("RGB", (600, 600), (200, 200, 200))
    large.paste(source.resize((364, 455)), (100, 50))  # about 100 px
    assert len(template_photos.face_boxes(large)) == 1


def test_the_photo_mode_needs_a_photo(tenant_a: Tenant):
    found = errors(tenant_a, reference_mode="photo")
    assert found == {"reference_image": ["Add the template photo: the client's face is put into it."]}


def test_too_small_a_template_photo_is_refused(tenant_a: Tenant):
    found = errors(tenant_a, reference_mode="photo", reference_image=image_upload("p.png", image_bytes((400, 400))))
    assert found["reference_image"][0].startswith("The template photo can't be used:")


def test_switching_to_the_photo_mode_checks_the_kept_image(tenant_a: Tenant, make_template):
    faceless = make_template("Stripes", reference_mode="img2img", reference_image=image_upload())
    with tenant_context(tenant_a.studio), pytest.raises(SettingsInvalid) as caught:
        versions.save_template(template=faceless, settings={"reference_mode": "photo"})
    assert caught.value.errors == {"reference_image": [template_photos.NO_FACE_MESSAGE]}

    portrait = make_template("Portrait", reference_mode="img2img", reference_image=face_upload())
    with tenant_context(tenant_a.studio):
        saved = versions.save_template(template=portrait, settings={"reference_mode": "photo"})
    first = reload(tenant_a, portrait)
    assert saved.created and saved.version.reference_mode == "photo"
    with tenant_context(tenant_a.studio):
        v1 = TemplateVersion.objects.get(template=portrait, number=1)
    assert first.current_version.reference_image.name == v1.reference_image.name  # the same stored file


def test_a_photo_version_stays_runnable_and_restorable(tenant_a: Tenant):
    template = photo_template(tenant_a)
    with tenant_context(tenant_a.studio):
        assert versions.runnable_problem(template) is None
        versions.save_template(template=template, settings={"reference_mode": "", "remove_reference_image": True})
        v1 = TemplateVersion.objects.get(template=template, number=1)
        restored = versions.restore_version(template=template, version=v1)
    assert restored.reference_mode == "photo" and restored.reference_image.name == v1.reference_image.name


# --- the mask the photographer sees ---------------------------------------------------------------------------


def test_the_mask_png_tints_the_face_and_leaves_the_rest(client_a: Any, tenant_a: Tenant):
    template = photo_template(tenant_a)
    response = client_a.get(mask_url(tenant_a, template))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private")
    overlay = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    version = reload(tenant_a, template).current_version
    with version.reference_image.open("rb") as handle:
        photo = np.asarray(Image.open(handle).convert("RGB"), dtype=np.int16)
    assert overlay.shape == photo.shape  # 910 x 1137: under the preview's size, not scaled
    # The face (361, 134, 617, 389): its centre is tinted; with margin 0.3 and feather 0.15 of the face's 256 px,
    # nothing farther than 115 px from the box changes.
    assert np.abs(overlay[261, 489] - photo[261, 489]).sum() > 60
    assert np.array_equal(overlay[:15], photo[:15])
    assert np.array_equal(overlay[520:], photo[520:])
    assert np.array_equal(overlay[:, :240], photo[:, :240])


def test_the_mask_follows_the_versions_margin(client_a: Any, tenant_a: Tenant):
    template = photo_template(tenant_a)
    with tenant_context(tenant_a.studio):
        versions.save_template(template=template, settings={"mask_margin": 0.0, "mask_feather": 0.0})
    overlay = np.asarray(Image.open(io.BytesIO(client_a.get(mask_url(tenant_a, template)).content)), dtype=np.int16)
    version = reload(tenant_a, template).current_version
    with version.reference_image.open("rb") as handle:
        photo = np.asarray(Image.open(handle).convert("RGB"), dtype=np.int16)
    assert np.array_equal(overlay[:, :355], photo[:, :355])  # a mask no larger than the face box (plus outline)
    assert np.array_equal(overlay[395:], photo[395:])


def test_the_mask_is_404_for_a_version_without_a_photo_or_of_another_studio(
    client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template
):
    plain = make_template()
    assert client_a.get(mask_url(tenant_a, plain)).status_code == 404
    reference = make_template("Composed", reference_mode="img2img", reference_image=face_upload())
    assert client_a.get(mask_url(tenant_a, reference)).status_code == 404
    theirs = photo_template(tenant_b)
    assert client_a.get(mask_url(tenant_a, theirs)).status_code == 404
    assert client_a.post(mask_url(tenant_a, theirs)).status_code == 404
    ours = photo_template(tenant_a)
    assert client_a.post(mask_url(tenant_a, ours)).status_code == 405


def test_the_designer_shows_the_photo_beside_its_mask(client_a: Any, tenant_a: Tenant):
    template = photo_template(tenant_a)
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert f'src="{mask_url(tenant_a, template)}"' in html
    assert 'alt="The template photo of version 1, as the photographer took it"' in html
    assert 'alt="The same photo with the face mask tinted pink: 1 face will be regenerated' in html
    assert "No face was found" not in html


def test_staff_see_the_photo_the_mask_and_the_finishing_settings(staff_client: Any, tenant_a: Tenant):
    template = photo_template(tenant_a)
    with tenant_context(tenant_a.studio):
        versions.publish(template=template)
    html = text(staff_client.get(page(tenant_a, f"{template.pk}/")))
    assert "Template photo (the client's face is put into it)" in html
    assert f'src="{mask_url(tenant_a, template)}"' in html
    assert "On · denoise 0.40 · identity weight 1" in html
    assert "3000 px long side · upscale denoise 0.25" in html
    assert "margin 0.30 · feather 0.15" in html
    assert "the template photo's size" in html
    assert staff_client.get(mask_url(tenant_a, template)).status_code == 200


def test_a_photo_where_no_face_is_found_says_so(client_a: Any, tenant_a: Tenant):
    template = faceless_photo_template(tenant_a)
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert "No face was found in this template photo" in html
    assert "mask.png" not in html
    response = client_a.get(mask_url(tenant_a, template))  # the photo, with nothing tinted
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


# --- the designer form ----------------------------------------------------------------------------------------


def test_the_designer_has_a_finishing_group(client_a: Any, tenant_a: Tenant, make_template):
    template = make_template()
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    finishing = html[html.index("<legend>Finishing</legend>") :]
    for label in ("Face pass", "Face pass denoise", "Face pass identity weight", "Print long side (px)"):
        assert f">{label}</label>" in finishing
    assert 'name="face_pass"' in finishing and "checked" in finishing.split('name="face_pass"')[1].split(">")[0]
    assert 'name="long_side" value="3000"' in finishing
    assert 'name="mask_margin" value="0.3"' in finishing and 'name="mask_feather" value="0.15"' in finishing
    assert "every pixel outside stays exactly as it was" in finishing
    new = text(client_a.get(page(tenant_a, "new/")))
    assert 'name="long_side" value="3000"' in new and 'name="upscale_denoise" value="0.25"' in new


def test_unticking_the_face_pass_on_the_page_makes_a_version_without_it(client_a: Any, tenant_a: Tenant, make_template):
    from tests.templates_app.test_views import form_data

    template = reload(tenant_a, make_template())
    data = form_data(template, long_side="4096")
    data.pop("face_pass")  # an unticked checkbox is not sent
    response = client_a.post(page(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 302, text(response)
    version = reload(tenant_a, template).current_version
    assert version.number == 2 and version.face_pass is False and version.long_side == 4096
    bad = client_a.post(page(tenant_a, f"{template.pk}/"), form_data(template, long_side="100"))
    assert bad.status_code == 400 and "The print long side must be 0" in text(bad)


def test_compare_lists_the_finishing_settings(tenant_a: Tenant, make_template):
    template = make_template()
    with tenant_context(tenant_a.studio):
        versions.save_template(template=template, settings={"long_side": 0, "face_pass": False})
        v1, v2 = TemplateVersion.objects.filter(template=template).order_by("number")
    rows = {row.name: row for row in selectors.compare(a=v1, b=v2)}
    assert (rows["long_side"].a, rows["long_side"].b) == ("3000 px", "The render's own size")
    assert (rows["face_pass"].label, rows["face_pass"].a, rows["face_pass"].b) == ("Face pass", "On", "Off")
    assert not rows["mask_margin"].changed and rows["mask_margin"].label == "Face mask margin"


# --- the API and the starters ---------------------------------------------------------------------------------


def test_the_api_takes_and_shows_the_finishing_settings(client_a: Any, tenant_a: Tenant):
    body = {"name": "Print", **SETTINGS, "face_pass": False, "long_side": 0, "mask_feather": 0.2}
    response = client_a.post(f"{tenant_a.prefix}/api/templates/", body, "application/json")
    assert response.status_code == 201, response.content
    version = response.json()["current_version"]
    assert (version["face_pass"], version["long_side"], version["mask_feather"]) == (False, 0, 0.2)
    assert (version["face_denoise"], version["upscale_denoise"], version["mask_margin"]) == (0.4, 0.25, 0.3)
    url = f"{tenant_a.prefix}/api/templates/{response.json()['id']}/"
    bad = client_a.patch(url, {"long_side": 100, "upscale_denoise": 0.9}, "application/json")
    assert bad.status_code == 400
    fields = bad.json()["error"]["fields"]
    assert set(fields) == {"long_side", "upscale_denoise"}
    assert fields["upscale_denoise"] == ["The upscale denoise must be between 0 and 0.6."]


def test_the_api_takes_a_template_photo_and_refuses_one_without_a_face(client_a: Any, tenant_a: Tenant):
    url = f"{tenant_a.prefix}/api/templates/"
    data = {"name": "Photo", **SETTINGS, "reference_mode": "photo"}
    response = client_a.post(url, {**data, "reference_image": face_upload()})
    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["reference_mode"] == "photo"
    refused = client_a.post(url, {**data, "reference_image": image_upload()})
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"reference_image": [template_photos.NO_FACE_MESSAGE]}


def test_the_api_schema_documents_the_finishing_inputs(client_a: Any, tenant_a: Tenant):
    schema = client_a.get("/api/schema/?format=json").json()
    inputs = schema["components"]["schemas"]["TemplateCreate"]["properties"]
    assert "3000 px is about 25 cm at 300 dpi" in inputs["long_side"]["description"]
    assert "width and height are ignored" in inputs["reference_mode"]["description"]
    outputs = schema["components"]["schemas"]["TemplateVersion"]["properties"]
    for name in FINISHING:
        assert inputs[name]["description"] and outputs[name]["description"], name


def test_starters_run_the_face_pass_at_print_size(client_a: Any, tenant_a: Tenant):
    assert all(starter.face_pass and starter.long_side == 3000 for starter in STARTERS)
    with tenant_context(tenant_a.studio):
        template = versions.copy_starter(key=STARTERS[0].key, user=tenant_a.owner)
    version = reload(tenant_a, template).current_version
    assert version.face_pass is True and version.long_side == 3000
    listed = client_a.get(f"{tenant_a.prefix}/api/starters/").json()
    assert (listed[0]["face_pass"], listed[0]["long_side"]) == (True, 3000)
