"""Group templates (issue 17): a version's subject slots (2-6 people, {subject_1} ... in the prompt) and slot boxes
(where each person is, fractions of the picture). Their checks and messages (the service, the designer page and
the API), immutability (a new number of people is a new version), the designer's inputs, the boxes drawn over the
template photo and "Detect faces" (dlib runs for real on a photo of two of shared/fixtures/faces' people side by
side), the group starter, and the selectors the group runs use."""

from __future__ import annotations

import html as html_lib
import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from templates_app import render_settings, selectors, versions
from templates_app.errors import SettingsInvalid
from templates_app.models import Template, TemplateVersion
from templates_app.starters import STARTERS, get_starter
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.templates_app.conftest import SD15, SETTINGS, reload

pytestmark = pytest.mark.django_db

COUPLE_PROMPT = "studio portrait of {subject_1} and {subject_2} side by side, soft light"
GROUP: dict[str, Any] = {**SETTINGS, "subject_slots": 2, "prompt": COUPLE_PROMPT}
HALVES = [[0, 0, 0.5, 1], [0.5, 0, 1, 1]]
BOX_SIDES = render_settings.BOX_SIDES
LEFT_HALF = ("0", "0", "50", "100")


def errors(tenant: Tenant, **changes: Any) -> dict[str, list[str]]:
    with tenant_context(tenant.studio), pytest.raises(SettingsInvalid) as caught:
        render_settings.clean_settings(data={**GROUP, **changes})
    return caught.value.errors


def text(response: Any) -> str:
    return html_lib.unescape(response.content.decode())


def page(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/templates/{path}"


def api(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/api/{path}"


def versions_of(tenant: Tenant, template: Template) -> list[TemplateVersion]:
    with tenant_context(tenant.studio):
        return list(TemplateVersion.objects.filter(template=template).order_by("number"))


def two_people_jpeg() -> bytes:
    """person_a_01 and person_b_01 side by side (person B scaled to the same height): A on the left."""
    a = Image.open(FACES / "person_a_01.jpg").convert("RGB")
    b = Image.open(FACES / "person_b_01.jpg").convert("RGB")
    b = b.resize((round(b.width * a.height / b.height), a.height), Image.Resampling.LANCZOS)
    photo = Image.new("RGB", (a.width + b.width, a.height), (128, 128, 128))
    photo.paste(a, (0, 0))
    photo.paste(b, (a.width, 0))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=92)
    return out.getvalue()


def photo_upload(data: bytes, name: str = "couple.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def group_photo_template(tenant: Tenant, photo: bytes | None = None, **changes: Any) -> Template:
    with tenant_context(tenant.studio):
        return versions.create_template(
            name="Couple by the window",
            settings={
                **GROUP,
                "reference_mode": "photo",
                "reference_image": photo_upload(photo if photo is not None else two_people_jpeg()),
                **changes,
            },
            user=tenant.owner,
        )


def form_data(template: Template, **changes: Any) -> dict[str, Any]:
    """What the designer posts for `template` (its current settings, every input as the page fills it in)."""
    v = template.current_version
    data: dict[str, Any] = {
        "name": template.name,
        "category": template.category,
        "description": "",
        "subject_slots": str(v.subject_slots),
        "prompt": v.prompt,
        "negative_prompt": v.negative_prompt,
        "base_model": v.base_model,
        "style_lora": "",
        "style_weight": f"{v.style_weight:g}",
        "reference_mode": v.reference_mode,
        "strength": f"{v.strength:g}",
        "scheduler": v.scheduler,
        "steps": str(v.steps),
        "guidance": f"{v.guidance:g}",
        "width": "",
        "height": "",
        "identity_weight": f"{v.identity_weight:g}",
        "images_per_run": str(v.images_per_run),
        "price_per_image": str(v.price_per_image),
        "face_pass": "on",
        "face_denoise": f"{v.face_denoise:g}",
        "face_identity_weight": f"{v.face_identity_weight:g}",
        "long_side": str(v.long_side),
        "upscale_denoise": f"{v.upscale_denoise:g}",
        "mask_margin": f"{v.mask_margin:g}",
        "mask_feather": f"{v.mask_feather:g}",
        "note": "",
    }
    for slot in range(1, 7):
        for side in render_settings.BOX_SIDES:
            data[f"slot_{slot}_{side}"] = ""
    for slot, box in enumerate(v.slot_boxes, start=1):
        for side, fraction in zip(render_settings.BOX_SIDES, box, strict=True):
            data[f"slot_{slot}_{side}"] = f"{fraction * 100:g}"
    data.update(changes)
    return data


# --- the checks -----------------------------------------------------------------------------------------------


def test_a_group_template_with_boxes_passes(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        clean = render_settings.clean_settings(data={**GROUP, "slot_boxes": [[0, 0.1, 1 / 3, 0.9], [0.5, 0, 1, 1]]})
    assert clean.subject_slots == 2
    assert clean.slot_boxes == [[0.0, 0.1, 0.3333, 0.9], [0.5, 0.0, 1.0, 1.0]]  # kept to 4 decimals
    six = " ".join(f"{{subject_{n}}}" for n in range(1, 7))
    with tenant_context(tenant_a.studio):
        assert render_settings.clean_settings(data={**GROUP, "subject_slots": 6, "prompt": six}).slot_boxes == []


def test_a_single_template_is_as_before(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        clean = render_settings.clean_settings(data=SETTINGS)
    assert (clean.subject_slots, clean.slot_boxes) == (1, [])


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"subject_slots": 7}, "subject_slots", "The number of people in the picture must be between 1 and 6."),
        ({"subject_slots": 0}, "subject_slots", "between 1 and 6"),
        ({"subject_slots": "two"}, "subject_slots", "must be a whole number"),
        ({"subject_slots": ""}, "subject_slots", "Enter the number of people in the picture."),
        (
            {"prompt": "portrait of {subject} and {subject_2}"},
            "prompt",
            "A group template names each person: write {subject_1} and {subject_2} instead of {subject}",
        ),
        ({"prompt": "portrait of {subject_1} alone"}, "prompt", "Put {subject_2} in the prompt: each of the 2 people"),
        (
            {"subject_slots": 3, "prompt": "portrait of {subject_2}"},
            "prompt",
            "Put {subject_1}, {subject_3} in the prompt: each of the 3 people appears in it at least once (e.g. "
            "“portrait of {subject_1}, {subject_2} and {subject_3} side by side”)",
        ),
        (
            {"prompt": "{subject_1}, {subject_2} and {subject_3}"},
            "prompt",
            "The prompt names {subject_3} but the template has 2 people: use {subject_1} and {subject_2}.",
        ),
        ({"prompt": "{subject_1} and {Subject_2}"}, "prompt", "Write each person's placeholder exactly as"),
        ({"prompt": "{subject_1}, {subject_2} and {subject_0}"}, "prompt", "{subject_0} would appear in the prompt"),
        ({"prompt": "{subject_01} and {subject_2}"}, "prompt", "{subject_01} would appear in the prompt"),
        (
            {"subject_slots": 1, "prompt": "portrait of {subject_1}"},
            "prompt",
            "{subject_1} is for group templates: a template for one person writes {subject} where the client goes",
        ),
        (
            {"subject_slots": 1, "prompt": "portrait of {subject}", "slot_boxes": [[0, 0, 1, 1]]},
            "slot_boxes",
            "Slot boxes are for group templates (2 or more people in the picture)",
        ),
        ({"slot_boxes": [[0, 0, 0.5, 1]]}, "slot_boxes", "There is 1 slot box for 2 people: give one box per person"),
        ({"slot_boxes": HALVES * 2}, "slot_boxes", "There are 4 slot boxes for 2 people"),
        ({"slot_boxes": "left and right"}, "slot_boxes", "Give the slot boxes as a list with one [left, top, right"),
        ({"slot_boxes": [[0, 0, 0.5], [0.5, 0, 1, 1]]}, "slot_boxes", "Person 1's box must be four numbers"),
        ({"slot_boxes": [[0, 0, 0.5, True], [0.5, 0, 1, 1]]}, "slot_boxes", "Person 1's box must be four numbers"),
        ({"slot_boxes": [[0, 0, 0.5, "nan"], [0.5, 0, 1, 1]]}, "slot_boxes", "Person 1's box must be four numbers"),
        (
            {"slot_boxes": [[0, 0, 0.5, 1], [0.5, 0, 1.5, 1]]},
            "slot_boxes",
            "Person 2's box must lie inside the picture",
        ),
        ({"slot_boxes": [[-0.1, 0, 0.5, 1], [0.5, 0, 1, 1]]}, "slot_boxes", "Person 1's box must lie inside"),
        (
            {"slot_boxes": [[0.5, 0, 0.5, 1], [0.5, 0, 1, 1]]},
            "slot_boxes",
            "Person 1's box: its left side must be to the left of its right side.",
        ),
        ({"slot_boxes": [[0, 1, 0.5, 0], [0.5, 0, 1, 1]]}, "slot_boxes", "Person 1's box: its top must be above"),
        (
            {"slot_boxes": [[0.5, 0, 1, 1], [0.5, 0, 1, 1]]},
            "slot_boxes",
            "Person 1's and person 2's boxes are the same: give each person their own place in the picture.",
        ),
    ],
)
def test_each_bad_group_setting_has_its_message(tenant_a: Tenant, changes: dict[str, Any], field: str, message: str):
    found = errors(tenant_a, **changes)
    assert field in found, found
    assert message in found[field][0], found[field]


def test_a_single_template_still_needs_its_subject(tenant_a: Tenant):
    found = errors(tenant_a, subject_slots=1, prompt="portrait of the client")
    assert "Put {subject} in the prompt" in found["prompt"][0]


def test_a_group_prompt_is_counted_with_each_person_as_a_trigger_phrase(tenant_a: Tenant):
    # 80 placeholders: 160 tokens counted as "ohwx person" each (CLIP would read "{subject_1}" as 5 tokens: 400).
    long_names = "{subject_1} {subject_2} " * 40
    with tenant_context(tenant_a.studio):
        assert render_settings.clean_settings(data={**GROUP, "prompt": long_names}).prompt == long_names.strip()
    found = errors(tenant_a, prompt="{subject_1} and {subject_2}, " + "a, " * 120)
    assert "tokens long; the most is 225" in found["prompt"][0]


# --- versions -------------------------------------------------------------------------------------------------


def test_the_number_of_people_and_their_boxes_are_version_settings(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        template = versions.create_template(name="Couple", settings=GROUP, user=tenant_a.owner)
        same = versions.save_template(template=template, settings={"subject_slots": 2, "slot_boxes": []})
        boxed = versions.save_template(template=template, settings={"slot_boxes": HALVES})
        again = versions.save_template(template=template, settings={"slot_boxes": [[0, 0, 0.5, 1.0], [0.5, 0, 1, 1]]})
        three = versions.save_template(
            template=template,
            settings={"subject_slots": 3, "prompt": "{subject_1}, {subject_2} and {subject_3}", "slot_boxes": []},
        )
    assert not same.created and boxed.created and not again.created and three.created
    v1, v2, v3 = versions_of(tenant_a, template)
    assert (v1.subject_slots, v1.slot_boxes) == (2, [])  # never changed
    assert (v2.subject_slots, v2.slot_boxes) == (2, [[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]])
    assert v3.subject_slots == 3 and v3.slot_boxes == []
    with tenant_context(tenant_a.studio):
        restored = versions.restore_version(template=template, version=v2)
        copy = versions.duplicate(template=template)
    assert (restored.subject_slots, restored.slot_boxes) == (2, v2.slot_boxes)
    copied = reload(tenant_a, copy).current_version
    assert (copied.subject_slots, copied.slot_boxes) == (2, v2.slot_boxes)
    with tenant_context(tenant_a.studio):
        rows = {row.name: row for row in selectors.compare(a=v2, b=v3)}
    assert rows["subject_slots"].changed and rows["subject_slots"].b == "Group of 3"
    assert rows["slot_boxes"].a == "1: 0% 0% 50% 100%; 2: 50% 0% 100% 100%" and rows["slot_boxes"].b == "Left to right"


def test_a_new_number_of_people_needs_boxes_to_match(tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        template = versions.create_template(name="Couple", settings={**GROUP, "slot_boxes": HALVES})
        with pytest.raises(SettingsInvalid) as caught:
            versions.save_template(
                template=template, settings={"subject_slots": 3, "prompt": "{subject_1}, {subject_2}, {subject_3}"}
            )
    assert "There are 2 slot boxes for 3 people" in caught.value.errors["slot_boxes"][0]
    assert len(versions_of(tenant_a, template)) == 1


def test_the_selectors_for_group_runs(tenant_a: Tenant, make_template):
    single = reload(tenant_a, make_template()).current_version
    with tenant_context(tenant_a.studio):
        boxed = versions.create_template(name="Boxed", settings={**GROUP, "slot_boxes": HALVES}).current_version
        plain = versions.create_template(name="Plain", settings=GROUP).current_version
    assert not selectors.is_group(single) and selectors.slot_boxes(single) is None
    assert selectors.is_group(plain) and selectors.slot_boxes(plain) is None
    assert selectors.slot_boxes(boxed) == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]


# --- the designer ---------------------------------------------------------------------------------------------


def test_the_designer_has_the_people_and_box_inputs(client_a: Any, tenant_a: Tenant, make_template):
    single = make_template()
    html = text(client_a.get(page(tenant_a, f"{single.pk}/")))
    assert '<label for="id_subject_slots">People in the picture</label>' in html
    assert "2–6 makes a group template: write {subject_1} … in the prompt" in html
    assert '<fieldset class="tpl-fieldset tpl-slots" id="slot-boxes" data-slot-boxes hidden>' in html  # 1 person
    with tenant_context(tenant_a.studio):
        group = versions.create_template(
            name="Trio", settings={**GROUP, "subject_slots": 3, "prompt": "{subject_1}, {subject_2} and {subject_3}"}
        )
    html = text(client_a.get(page(tenant_a, f"{group.pk}/")))
    assert '<fieldset class="tpl-fieldset tpl-slots" id="slot-boxes" data-slot-boxes>' in html
    assert "<legend>Where each person is</legend>" in html
    for slot in (1, 2, 3):
        assert f'<fieldset class="slot-row" data-slot="{slot}">' in html
        assert f"<legend>Person {slot} " in html
        for side in render_settings.BOX_SIDES:
            assert f'<label for="id_slot_{slot}_{side}">{side.capitalize()} (%)</label>' in html
    assert '<fieldset class="slot-row" data-slot="4" hidden>' in html
    assert "Detect faces" not in html  # no template photo
    assert "Group of 3" in html
    listing = text(client_a.get(page(tenant_a)))
    assert listing.count("Group of 3") == 1 and "Group of 1" not in listing


def test_the_designer_saves_boxes_in_percent_as_fractions(client_a: Any, tenant_a: Tenant):
    with tenant_context(tenant_a.studio):
        template = versions.create_template(name="Couple", settings=GROUP)
    template = reload(tenant_a, template)
    data = form_data(template, slot_1_left="0", slot_1_top="10", slot_1_right="45.5", slot_1_bottom="90")
    data.update(slot_2_left="55", slot_2_top="10", slot_2_right="100", slot_2_bottom="90", slot_3_left="7")
    response = client_a.post(page(tenant_a, f"{template.pk}/"), data)
    assert response.status_code == 302, text(response)
    _, v2 = versions_of(tenant_a, template)
    assert v2.slot_boxes == [[0.0, 0.1, 0.455, 0.9], [0.55, 0.1, 1.0, 0.9]]  # person 3's input is not a person
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert 'name="slot_1_right" value="45.5"' in html and "Group of 2" in html


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": "portrait of {subject}"}, "A group template names each person: write {subject_1} and {subject_2}"),
        ({"subject_slots": "9"}, "The number of people in the picture must be between 1 and 6."),
        ({"slot_1_left": "10"}, "Give the top of person 1's box, in % of the picture (or leave every person's box"),
        (
            {"slot_1_left": "0", "slot_1_top": "0", "slot_1_right": "150", "slot_1_bottom": "100"},
            "The right of person 1's box must be a percentage of the picture's width, from 0 to 100.",
        ),
        (
            {"slot_1_left": "0", "slot_1_top": "0", "slot_1_right": "50", "slot_1_bottom": "abc"},
            "The bottom of person 1's box must be a percentage of the picture's height, from 0 to 100.",
        ),
        (
            {f"slot_{n}_{side}": value for n in (1, 2) for side, value in zip(BOX_SIDES, LEFT_HALF, strict=True)},
            "Person 1's and person 2's boxes are the same: give each person their own place in the picture.",
        ),
    ],
)
def test_the_designer_shows_group_errors_as_400(client_a: Any, tenant_a: Tenant, changes: dict[str, Any], message: str):
    with tenant_context(tenant_a.studio):
        template = versions.create_template(name="Couple", settings=GROUP)
    template = reload(tenant_a, template)
    response = client_a.post(page(tenant_a, f"{template.pk}/"), form_data(template, **changes))
    assert response.status_code == 400
    assert message in text(response)
    assert len(versions_of(tenant_a, template)) == 1


# --- the template photo and "Detect faces" --------------------------------------------------------------------


def test_a_group_template_photo_is_accepted_and_shown_with_its_boxes(client_a: Any, tenant_a: Tenant):
    template = reload(tenant_a, group_photo_template(tenant_a, slot_boxes=HALVES))
    assert template.current_version.reference_mode == "photo" and template.current_version.subject_slots == 2
    html = text(client_a.get(page(tenant_a, f"{template.pk}/")))
    assert (
        'data-slot-box="1" data-css-slot-l="0%" data-css-slot-t="0%" data-css-slot-w="50%" data-css-slot-h="100%"'
        in html
    )
    assert 'data-slot-box="2" data-css-slot-l="50%"' in html
    assert 'data-slot-box="3" hidden' in html
    assert 'name="detect_faces"' in html and "Detect faces" in html


def test_detect_faces_fills_the_boxes_left_to_right_and_saves_nothing(client_a: Any, tenant_a: Tenant):
    template = reload(tenant_a, group_photo_template(tenant_a))
    response = client_a.post(page(tenant_a, f"{template.pk}/"), form_data(template, detect_faces="1"))
    assert response.status_code == 200, text(response)
    html = text(response)
    assert "2 faces found in the template photo: the boxes are filled left to right" in html
    values = {}
    for slot in (1, 2):
        for side in render_settings.BOX_SIDES:
            field = f"slot_{slot}_{side}"
            start = html.index(f'name="{field}" value="') + len(f'name="{field}" value="')
            values[field] = float(html[start : html.index('"', start)])
    # person A's face (left photo, about x 361-604 of 1880... scaled) is person 1; person B's is person 2
    width = Image.open(io.BytesIO(two_people_jpeg())).width
    assert values["slot_1_right"] < 910 / width * 100 < values["slot_2_left"]
    assert values["slot_1_left"] < values["slot_1_right"] and values["slot_2_top"] < values["slot_2_bottom"]
    assert 'data-slot-box="1" data-css-slot-l=' in html
    assert len(versions_of(tenant_a, template)) == 1  # nothing saved
    # Saving the page as filled in keeps those boxes.
    data = form_data(template, **{k: f"{v:g}" for k, v in values.items()})
    assert client_a.post(page(tenant_a, f"{template.pk}/"), data).status_code == 302
    saved = versions_of(tenant_a, template)[-1]
    assert saved.number == 2 and saved.slot_boxes[0][2] < saved.slot_boxes[1][0]


def test_detect_faces_says_why_it_cant(client_a: Any, tenant_a: Tenant, make_template):
    one_face = (FACES / "person_a_01.jpg").read_bytes()
    template = reload(tenant_a, group_photo_template(tenant_a, photo=one_face))
    response = client_a.post(page(tenant_a, f"{template.pk}/"), form_data(template, detect_faces="1"))
    assert response.status_code == 400
    assert "Only 1 face was found in the template photo" in text(response)
    assert "and the template has 2 people" in text(response)
    response = client_a.post(
        page(tenant_a, f"{template.pk}/"), form_data(template, detect_faces="1", subject_slots="1")
    )
    assert response.status_code == 400 and "Set “People in the picture” to 2 or more first" in text(response)
    with tenant_context(tenant_a.studio):
        plain = versions.create_template(name="No photo", settings=GROUP)
    plain = reload(tenant_a, plain)
    response = client_a.post(page(tenant_a, f"{plain.pk}/"), form_data(plain, detect_faces="1"))
    assert response.status_code == 400 and "Faces are found in the saved template photo" in text(response)
    assert len(versions_of(tenant_a, template)) == 1 and len(versions_of(tenant_a, plain)) == 1


def test_staff_cant_detect_faces(staff_client: Any, tenant_a: Tenant):
    template = reload(tenant_a, group_photo_template(tenant_a))
    response = staff_client.post(page(tenant_a, f"{template.pk}/"), form_data(template, detect_faces="1"))
    assert response.status_code == 403


# --- the API --------------------------------------------------------------------------------------------------


def test_the_api_reads_and_writes_the_group_settings(client_a: Any, tenant_a: Tenant):
    body = {"name": "Couple", **GROUP, "slot_boxes": HALVES}
    response = client_a.post(api(tenant_a, "templates/"), body, "application/json")
    assert response.status_code == 201, response.content
    version = response.json()["current_version"]
    assert version["subject_slots"] == 2 and version["slot_boxes"] == [[0, 0, 0.5, 1], [0.5, 0, 1, 1]]
    url = api(tenant_a, f"templates/{response.json()['id']}/")
    patched = client_a.patch(url, {"slot_boxes": []}, "application/json").json()
    assert patched["version_created"] and patched["current_version"]["slot_boxes"] == []
    # multipart: the boxes as a JSON string
    response = client_a.post(api(tenant_a, "templates/"), {"name": "Duo", **GROUP, "slot_boxes": json.dumps(HALVES)})
    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["slot_boxes"] == HALVES


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"prompt": "portrait of {subject}"}, "prompt", "A group template names each person"),
        ({"subject_slots": 8}, "subject_slots", "between 1 and 6"),
        ({"slot_boxes": [[0, 0, 0.5, 1]]}, "slot_boxes", "There is 1 slot box for 2 people"),
        ({"slot_boxes": [[0, 0, 1, 1], [0, 0, 1, 1]]}, "slot_boxes", "Person 1's and person 2's boxes are the same"),
    ],
)
def test_the_api_refuses_bad_group_settings_with_400(
    client_a: Any, tenant_a: Tenant, changes: dict[str, Any], field: str, message: str
):
    response = client_a.post(api(tenant_a, "templates/"), {"name": "Couple", **GROUP, **changes}, "application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert any(message in m for m in error["fields"][field]), error
    with tenant_context(tenant_a.studio):
        assert not Template.objects.exists()


def test_the_api_refuses_slot_boxes_that_are_not_json(client_a: Any, tenant_a: Tenant):
    response = client_a.post(api(tenant_a, "templates/"), {"name": "Couple", **GROUP, "slot_boxes": "[[0, 0"})
    assert response.status_code == 400
    assert "slot_boxes" in response.json()["error"]["fields"]


# --- the starter ----------------------------------------------------------------------------------------------


def test_the_group_starter_copies_into_a_publishable_group_template(client_a: Any, tenant_a: Tenant):
    starter = get_starter("couple-studio-light")
    assert starter is not None and starter in STARTERS
    with tenant_context(tenant_a.studio):
        template = versions.copy_starter(key=starter.key, user=tenant_a.owner)
        versions.publish(template=template)
    version = reload(tenant_a, template).current_version
    assert version.base_model == SD15 and version.subject_slots == 2
    assert "{subject_1}" in version.prompt and "{subject_2}" in version.prompt and "{subject}" not in version.prompt
    assert selectors.slot_boxes(version) == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    listed = {s["key"]: s for s in client_a.get(api(tenant_a, "starters/")).json()}
    assert listed["couple-studio-light"]["subject_slots"] == 2 and listed["corporate-headshot"]["subject_slots"] == 1
    catalog = text(client_a.get(page(tenant_a, "starters/")))
    assert "Couple, studio light" in catalog and "Group of 2" in catalog
