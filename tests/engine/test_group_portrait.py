"""Group portraits (issue 17) on the tiny model with real diffusers and peft on the CPU: the scene is rendered with
no identity, each face is regenerated with its own person's LoRA and no other's (the render calls and the recipe
say so, and each face's pixels are exactly what that person's render alone gives), faces go to slots by the
template's boxes or left to right, and a picture with too few faces fails with the numbers said."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from engine import group, masks, portrait, rendering  # noqa: E402
from engine.checkpoints import build_tiny_model  # noqa: E402
from engine.rendering import PipelineCache, RenderConfig  # noqa: E402
from tests.engine.test_portrait import outside  # noqa: E402
from tests.engine.test_rendering import make_lora  # noqa: E402

LEFT, RIGHT = (4, 18, 26, 40), (36, 16, 60, 40)  # two "faces" in the tiny model's 64 px renders
ANNA, MARC = "ohwx anna", "sks marc"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("group")
    spec = build_tiny_model(root / "models", "sd15")
    return {
        "spec": spec,
        "anna": make_lora(spec, root / "anna", seed=1).read_bytes(),
        "marc": make_lora(spec, root / "marc", seed=2).read_bytes(),
    }


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu")


def two_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    return [RIGHT, LEFT]  # largest first, as dlib reports them: not in slot order


def cfg(**kwargs: Any) -> RenderConfig:
    base: dict[str, Any] = {
        "prompt": "{subject_1} and {subject_2} on a beach",
        "steps": 2,
        "seeds": [11],
        "width": 64,
        "height": 64,
    }
    return RenderConfig(**{**base, **kwargs})


def subjects(tiny: dict[str, Any], **boxes: Any) -> list[group.Subject]:
    return [
        group.Subject(slot=1, identity_lora=tiny["anna"], trigger_phrase=ANNA, box=boxes.get("anna")),
        group.Subject(slot=2, identity_lora=tiny["marc"], trigger_phrase=MARC, box=boxes.get("marc")),
    ]


def test_each_face_is_regenerated_with_its_own_persons_lora_and_no_other(
    tiny: dict[str, Any], cache: PipelineCache, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []
    real_render = portrait.render

    def spy(**kwargs: Any) -> Any:
        out = real_render(**kwargs)
        calls.append(
            {
                "lora": kwargs["identity_lora"],
                "prompt": out[0].recipe["prompt"],
                "adapters": [a["sha256"] for a in out[0].recipe.get("adapters", [])],
            }
        )
        return out

    monkeypatch.setattr(portrait, "render", spy)  # every stage renders through engine.portrait's call
    settings = masks.MaskSettings(margin=0.15, feather=0.1)
    stages = portrait.Stages(face_pass=portrait.FacePass(denoise=0.7, mask=settings))
    made = group.render_group_portraits(
        cache=cache, spec=tiny["spec"], subjects=subjects(tiny), config=cfg(), stages=stages, detector=two_faces
    )
    assert [p.ok for p in made] == [True]
    item = made[0]
    sha = {name: hashlib.sha256(tiny[name]).hexdigest() for name in ("anna", "marc")}

    # The adapter calls: the scene with no identity, then one render per face with that person's LoRA alone.
    scene, first, second = calls
    assert scene["lora"] is None and scene["adapters"] == []
    assert "a person and a person on a beach" in scene["prompt"] and "ohwx" not in scene["prompt"]
    assert first["lora"] == tiny["anna"] and first["adapters"] == [sha["anna"]]
    assert ANNA in first["prompt"] and MARC not in first["prompt"]
    assert second["lora"] == tiny["marc"] and second["adapters"] == [sha["marc"]]
    assert MARC in second["prompt"] and ANNA not in second["prompt"]

    # The recipe says who is where: slot 1 (Anna) has the left face, slot 2 (Marc) the right (left to right).
    assert item.recipe["subjects"] == [
        {"slot": 1, "trigger_phrase": ANNA, "identity_sha256": sha["anna"], "face": list(LEFT)},
        {"slot": 2, "trigger_phrase": MARC, "identity_sha256": sha["marc"], "face": list(RIGHT)},
    ]
    entry = portrait.stage_entries(item.recipe)["face_pass"]
    assert [(f["slot"], f["face"], f["identity_sha256"]) for f in entry["per_face"]] == [
        (1, list(LEFT), sha["anna"]),
        (2, list(RIGHT), sha["marc"]),
    ]
    assert portrait.stage_entries(item.recipe)["base"]["identity"] is None

    # Pixels: outside both faces' masks, the scene exactly; inside each, changed.
    plain = group.render_group_portraits(
        cache=cache,
        spec=tiny["spec"],
        subjects=subjects(tiny),
        config=cfg(),
        stages=stages,
        detector=lambda image: [],  # no face found: the portrait fails, but the scene is the same
    )
    assert plain[0].failed_stage == "face_pass" and "0 face(s) for a group of 2 people" in plain[0].error
    scene_image = rendering.render(
        cache=cache, spec=tiny["spec"], identity_lora=None, trigger_phrase="", config=cfg(prompt=calls[0]["prompt"])
    )[0].image
    keep = outside((64, 64), [LEFT, RIGHT], settings)
    before, after = np.asarray(scene_image), np.asarray(item.image)
    assert np.array_equal(after[keep], before[keep])
    for box in (LEFT, RIGHT):
        region = ~outside((64, 64), [box], settings)
        assert not np.array_equal(after[region], before[region])

    # No bleed: Anna's face is exactly what Anna's render alone makes of the scene, whatever Marc's LoRA is.
    swapped = dict(tiny, marc=make_lora(tiny["spec"], tmp_path / "someone-else", seed=9).read_bytes())
    again = group.render_group_portraits(
        cache=cache, spec=tiny["spec"], subjects=subjects(swapped), config=cfg(), stages=stages, detector=two_faces
    )[0]
    anna_only = ~outside((64, 64), [LEFT], settings) & outside((64, 64), [RIGHT], settings)
    assert np.array_equal(np.asarray(again.image)[anna_only], after[anna_only])
    marc_only = ~outside((64, 64), [RIGHT], settings) & outside((64, 64), [LEFT], settings)
    assert not np.array_equal(np.asarray(again.image)[marc_only], after[marc_only])


def test_faces_go_to_the_slots_boxes_when_the_template_gives_them() -> None:
    anna = group.Subject(slot=1, identity_lora=b"a", trigger_phrase=ANNA, box=(0.55, 0.2, 0.95, 0.7))  # right
    marc = group.Subject(slot=2, identity_lora=b"m", trigger_phrase=MARC, box=(0.05, 0.2, 0.45, 0.7))  # left
    assert group.assign_faces([LEFT, RIGHT], [anna, marc], (64, 64)) == [RIGHT, LEFT]
    plain = [group.Subject(slot=s.slot, identity_lora=b"x", trigger_phrase=s.trigger_phrase) for s in (anna, marc)]
    assert group.assign_faces([RIGHT, LEFT], plain, (64, 64)) == [LEFT, RIGHT]  # left to right


@pytest.mark.parametrize(
    ("people", "prompt", "message"),
    [
        (1, "{subject_1}", "A group portrait has 2 to 6 people, not 1."),
        (7, "{subject_1}", "A group portrait has 2 to 6 people, not 7."),
        (2, "{subject_1} and {subject_3}", "The prompt names {subject_3} but the group has 2 people"),
    ],
)
def test_a_group_that_cannot_be_rendered_is_refused_with_a_reason(people: int, prompt: str, message: str) -> None:
    members = [group.Subject(slot=n, identity_lora=b"x", trigger_phrase=f"p{n}") for n in range(1, people + 1)]
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        group.check_subjects(members, prompt)
    twice = [group.Subject(slot=1, identity_lora=b"x", trigger_phrase="a")] * 2
    with pytest.raises(ValueError, match="slots must be 1 to 2"):
        group.check_subjects(twice, "{subject_1}")


def test_prompts_for_the_scene_and_for_each_face() -> None:
    prompt = "{subject_1} hugging {subject_2}, golden light"
    assert group.subject_prompt(prompt, None) == "a person hugging a person, golden light"
    assert group.subject_prompt(prompt, 2) == "a person hugging {subject}, golden light"
    assert rendering.final_prompt(group.subject_prompt(prompt, 2), MARC) == f"a person hugging {MARC}, golden light"
    assert rendering.final_prompt("studio portrait", "") == "studio portrait"  # no identity, no stray comma


def test_the_upscale_re_renders_its_tiles_with_no_ones_identity(
    tiny: dict[str, Any], cache: PipelineCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    loras: list[Any] = []
    real_render = portrait.render
    monkeypatch.setattr(
        portrait, "render", lambda **kwargs: loras.append(kwargs["identity_lora"]) or real_render(**kwargs)
    )
    stages = portrait.Stages(face_pass=portrait.FacePass(), upscale=portrait.Upscale(long_side=96, denoise=0.3))
    item = group.render_group_portraits(
        cache=cache, spec=tiny["spec"], subjects=subjects(tiny), config=cfg(), stages=stages, detector=two_faces
    )[0]
    assert item.ok and item.image.size == (96, 96)
    assert loras == [None, tiny["anna"], tiny["marc"], None]  # scene, Anna's face, Marc's face, the tiles
    assert portrait.stage_entries(item.recipe)["upscale"]["identity"] is None
    assert [s["face"] for s in item.recipe["subjects"]] == [[6, 27, 39, 60], [54, 24, 90, 60]]  # scaled by 1.5


def test_a_group_template_photo_keeps_the_photo_and_inpaints_each_face_with_its_own_persons_lora(
    tiny: dict[str, Any], cache: PipelineCache
) -> None:
    """The photographer's photo of two people: each face inpainted with its own person's LoRA alone (the recipe's
    per-face entries), every pixel outside the faces' masks exactly the photo's, and the slots' boxes decide who
    goes where (swapping them swaps the people)."""
    rng = np.random.default_rng(5)
    photo = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    settings = masks.MaskSettings(margin=0.1, feather=0.1)
    stages = portrait.Stages(template_photo=portrait.TemplatePhoto(image=photo, mask=settings, strength=0.6))
    sha = {name: hashlib.sha256(tiny[name]).hexdigest() for name in ("anna", "marc")}
    item = group.render_group_portraits(
        cache=cache, spec=tiny["spec"], subjects=subjects(tiny), config=cfg(), stages=stages, detector=two_faces
    )[0]
    assert item.error is None and item.image is not None and item.image.size == (64, 64)
    entries = portrait.stage_entries(item.recipe)
    assert entries["base"]["mode"] == "template_photo" and entries["base"]["identity"] is None
    assert [
        (f["slot"], f["face"], f["identity_sha256"], f["adapters"]) for f in entries["template_photo"]["per_face"]
    ] == [
        (1, list(LEFT), sha["anna"], ["identity"]),
        (2, list(RIGHT), sha["marc"], ["identity"]),
    ]
    keep = outside((64, 64), [LEFT, RIGHT], settings)
    assert np.array_equal(np.asarray(item.image)[keep], np.asarray(photo)[keep])
    for box in (LEFT, RIGHT):
        region = ~outside((64, 64), [box], settings)
        assert not np.array_equal(np.asarray(item.image)[region], np.asarray(photo)[region])

    # The photographer's boxes put Anna on the right: the faces swap people.
    boxed = subjects(tiny, anna=(0.55, 0.2, 0.95, 0.7), marc=(0.05, 0.2, 0.45, 0.7))
    swapped = group.render_group_portraits(
        cache=cache, spec=tiny["spec"], subjects=boxed, config=cfg(), stages=stages, detector=two_faces
    )[0]
    assert [(s["slot"], s["face"]) for s in swapped.recipe["subjects"]] == [(1, list(RIGHT)), (2, list(LEFT))]

    # A photo with fewer faces than people fails, with the numbers said.
    with pytest.raises(ValueError, match="1 face\\(s\\) for a group of 2 people"):
        group.render_group_portraits(
            cache=cache,
            spec=tiny["spec"],
            subjects=subjects(tiny),
            config=cfg(),
            stages=stages,
            detector=lambda i: [LEFT],
        )
