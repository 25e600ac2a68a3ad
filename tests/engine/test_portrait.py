"""The portrait pipeline's stages on the tiny model with real diffusers, peft and dlib on the CPU: template photos
(inpainting, every pixel outside the feathered masks is the photo's), the face pass, print-size upscaling, the
output check, a stage failing one portrait only, and recipes that render a portrait again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from engine import masks, portrait, rendering, upscale  # noqa: E402
from engine.checkpoints import build_tiny_model  # noqa: E402
from engine.rendering import PipelineCache, RenderConfig  # noqa: E402
from tests.engine.test_rendering import make_lora  # noqa: E402
from tests.face_fixtures import FACES  # noqa: E402

TRIGGER = "ohwx person"
BOX = (16, 16, 40, 40)  # a "face" the fixed detector reports in the tiny model's 64 px renders


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("portrait")
    spec = build_tiny_model(root / "models", "sd15")
    return {"root": root, "spec": spec, "lora": make_lora(spec, root / "client", seed=1).read_bytes()}


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu")


def cfg(**kwargs: Any) -> RenderConfig:
    base: dict[str, Any] = {"prompt": "portrait of {subject}", "steps": 2, "seeds": [7], "width": 64, "height": 64}
    base.update(kwargs)
    return RenderConfig(**base)


def make(tiny: dict[str, Any], cache: PipelineCache, config: RenderConfig, **kwargs: Any) -> list[portrait.Portrait]:
    return portrait.render_portraits(
        cache=cache, spec=tiny["spec"], identity_lora=tiny["lora"], trigger_phrase=TRIGGER, config=config, **kwargs
    )


def fixed_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    return [BOX]


def outside(size: tuple[int, int], boxes: list[Any], settings: masks.MaskSettings) -> np.ndarray:
    """True where a pixel is farther than the feathered margin from every face box."""
    keep = np.ones((size[1], size[0]), dtype=bool)
    for box in boxes:
        left, top, right, bottom = masks.support_box(tuple(box), settings, size)
        keep[top:bottom, left:right] = False
    return keep


def small_photo() -> Image.Image:
    photo = Image.open(FACES / "person_a_01.jpg").convert("RGB")
    return photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.LANCZOS)


# --- masks and tiles (no model) ---------------------------------------------------------------------------------


def test_the_mask_is_soft_inside_and_exactly_zero_outside_its_support() -> None:
    settings = masks.MaskSettings(margin=0.3, feather=0.2)
    box = (40, 50, 80, 100)
    mask = masks.face_mask((160, 200), [box], settings)
    left, top, right, bottom = masks.support_box(box, settings, (160, 200))
    assert mask[75, 60] == pytest.approx(1.0)
    ring = mask[top:bottom, left:right]
    assert 0 < ring.min() < 1 or ring.min() == 0  # the soft edge reaches 0 inside the support
    assert np.any((mask > 0.05) & (mask < 0.95))  # feathered, not a hard edge
    keep = outside((160, 200), [box], settings)
    assert mask[keep].max() == 0.0 and mask[~keep].max() == 1.0
    base = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 160, 3), dtype=np.uint8))
    other = Image.new("RGB", base.size, (255, 0, 0))
    mixed = np.asarray(masks.composite(base, other, mask))
    assert np.array_equal(mixed[keep], np.asarray(base)[keep]) and tuple(mixed[75, 60]) == (255, 0, 0)
    with pytest.raises(ValueError, match="mask margin must be a number from 0 to 1"):
        masks.MaskSettings(margin=1.5)


def test_tiles_cover_the_image_and_blend_back_unchanged() -> None:
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (150, 230, 3), dtype=np.uint8))
    boxes = upscale.tile_boxes(image.size, 64, 8)
    covered = np.zeros((150, 230), dtype=bool)
    for left, top, right, bottom in boxes:
        assert right - left == 64 and bottom - top == 64
        covered[top:bottom, left:right] = True
    assert covered.all()
    blended = upscale.blend_tiles(image.size, boxes, [image.crop(box) for box in boxes], 8)
    assert np.array_equal(np.asarray(blended), np.asarray(image))
    assert upscale.target_size((640, 480), 3000) == (3000, 2250)


# --- template photos --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("long_side", [None, 360])
def test_template_photo_keeps_every_pixel_outside_the_feathered_masks(
    tiny: dict[str, Any], cache: PipelineCache, long_side: int | None
) -> None:
    photo = small_photo()
    settings = masks.MaskSettings(margin=0.25, feather=0.1)
    stages = portrait.Stages(
        template_photo=portrait.TemplatePhoto(image=photo, mask=settings, strength=0.8),
        upscale=portrait.Upscale(long_side=long_side) if long_side else None,
    )
    made = make(tiny, cache, cfg(seeds=[3, 4]), stages=stages)
    expected = portrait.prepare_photo(photo, long_side)
    assert [p.ok for p in made] == [True, True]
    for item in made:
        assert item.image.size == expected.size
        if long_side:
            assert max(item.image.size) == long_side
        assert len(item.faces) == 1  # dlib found the one face, in output pixels
        keep = outside(item.image.size, item.faces, settings)
        out, original = np.asarray(item.image), np.asarray(expected)
        assert np.array_equal(out[keep], original[keep])  # bit for bit outside the masks
        assert not np.array_equal(out[~keep], original[~keep])  # and the face was regenerated
        names = [entry["name"] for entry in item.recipe["stages"]]
        assert names == ["base", "template_photo", "face_pass", "upscale"]
        assert item.recipe["mode"] == "template_photo" and item.recipe["faces"] == [list(item.faces[0])]
    assert not np.array_equal(np.asarray(made[0].image), np.asarray(made[1].image))  # one seed each

    again = make(
        tiny,
        cache,
        rendering.config_from_recipe(made[0].recipe),
        stages=portrait.stages_from_recipe(made[0].recipe, photo=photo),
    )
    assert np.array_equal(np.asarray(again[0].image), np.asarray(made[0].image))
    with pytest.raises(ValueError, match="not the template photo"):
        portrait.stages_from_recipe(made[0].recipe, photo=photo.rotate(90))

    faceless = Image.new("RGB", (200, 200), (90, 120, 150))
    with pytest.raises(ValueError, match="no face was found in the template photo"):
        make(tiny, cache, cfg(), stages=portrait.Stages(template_photo=portrait.TemplatePhoto(image=faceless)))


def test_template_photo_with_an_inpainting_unet_and_a_controlnet(tiny: dict[str, Any]) -> None:
    """The operator's 9-channel inpainting UNet (a tiny one, saved in diffusers format and loaded through the same
    path as a real checkpoint's folder) and a canny ControlNet of the same crop."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    root = tiny["root"]
    unet = UNet2DConditionModel.from_pretrained(tiny["spec"].source, subfolder="unet")
    config = dict(unet.config)
    config["in_channels"] = 9
    inpaint = root / "inpainting-model"
    UNet2DConditionModel.from_config(config).save_pretrained(str(inpaint / "unet"))
    ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16)).save_pretrained(str(root / "cn"))
    own = PipelineCache(device="cpu", inpaint_unets={"sd15": str(inpaint)}, controlnets={"canny": str(root / "cn")})
    photo = small_photo()
    settings = masks.MaskSettings()
    made = make(
        tiny,
        own,
        cfg(),
        stages=portrait.Stages(template_photo=portrait.TemplatePhoto(image=photo, mask=settings, controlnet="canny")),
    )
    item = made[0]
    assert item.ok and item.recipe["stages"][1]["controlnet"] == "canny"
    variant = own.variant(tiny["spec"], "inpaint", "canny")
    assert type(variant).__name__ == "StableDiffusionControlNetInpaintPipeline"
    assert variant.unet.config.in_channels == 9 and variant.vae is own.get(tiny["spec"]).vae
    keep = outside(item.image.size, item.faces, settings)
    assert np.array_equal(np.asarray(item.image)[keep], np.asarray(photo)[keep])

    wrong = PipelineCache(device="cpu", inpaint_unets={"sd15": tiny["spec"].source})
    failed = make(tiny, wrong, cfg(), stages=portrait.Stages(template_photo=portrait.TemplatePhoto(image=photo)))[0]
    assert failed.image is None and failed.failed_stage == "template_photo"
    assert "4 input channels, not 9: it is not an inpainting model" in str(failed.error)


# --- face pass, upscale, output check ---------------------------------------------------------------------------


def test_face_pass_changes_only_the_masked_faces(tiny: dict[str, Any], cache: PipelineCache) -> None:
    plain = make(tiny, cache, cfg(seeds=[5]))
    assert [entry["name"] for entry in plain[0].recipe["stages"]] == ["base", "face_pass", "upscale"]
    settings = masks.MaskSettings(margin=0.2, feather=0.1)
    face = portrait.FacePass(identity_weight=1.2, denoise=0.6, mask=settings)
    made = make(tiny, cache, cfg(seeds=[5]), stages=portrait.Stages(face_pass=face), detector=fixed_faces)
    item = made[0]
    assert item.faces == [BOX] and item.recipe["faces"] == [list(BOX)]
    keep = outside((64, 64), [BOX], settings)
    before, after = np.asarray(plain[0].image), np.asarray(item.image)
    assert np.array_equal(after[keep], before[keep]) and not np.array_equal(after[~keep], before[~keep])
    entry = portrait.stage_entries(item.recipe)["face_pass"]
    assert entry["identity_weight"] == 1.2 and entry["denoise"] == 0.6 and entry["faces"] == 1
    assert entry["mask"] == {"margin": 0.2, "feather": 0.1}

    # "More like me" raises the face pass's identity weight too; the recipe renders the same pixels again.
    more = rendering.more_like_me(item.recipe)
    assert portrait.stage_entries(more)["face_pass"]["identity_weight"] == 1.35
    again = make(
        tiny,
        cache,
        rendering.config_from_recipe(item.recipe),
        stages=portrait.stages_from_recipe(item.recipe),
        detector=fixed_faces,
    )
    assert np.array_equal(np.asarray(again[0].image), after)


def test_upscale_reaches_the_long_side_and_scales_the_face_boxes(tiny: dict[str, Any], cache: PipelineCache) -> None:
    stages = portrait.Stages(face_pass=portrait.FacePass(), upscale=portrait.Upscale(long_side=112, denoise=0.5))
    made = make(tiny, cache, cfg(width=64, height=48), stages=stages, detector=fixed_faces)
    item = made[0]
    assert item.image.size == (112, 84) and max(item.image.size) == 112
    assert item.faces == [(28, 28, 70, 70)] and item.recipe["output_size"] == [112, 84]
    entry = portrait.stage_entries(item.recipe)["upscale"]
    assert entry["tiles"] == len(upscale.tile_boxes((112, 84), 48, 8)) and entry["enlarge"] == "lanczos"
    assert entry["seconds"] >= 0 and portrait.stage_entries(item.recipe)["base"]["seconds"] >= 0

    plain = make(tiny, cache, cfg(width=64, height=48))
    enlarge_only = make(
        tiny, cache, cfg(width=64, height=48), stages=portrait.Stages(upscale=portrait.Upscale(112, denoise=0))
    )
    resized = plain[0].image.resize((112, 84), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(enlarge_only[0].image), np.asarray(resized))
    assert not np.array_equal(np.asarray(item.image), np.asarray(resized))  # the tiles were re-rendered


def test_a_failing_stage_fails_its_portrait_only(tiny: dict[str, Any], cache: PipelineCache) -> None:
    calls = {"n": 0}

    def flaky(image: Image.Image) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("detector crashed")
        return [BOX]

    made = make(
        tiny, cache, cfg(seeds=[1, 2, 3]), stages=portrait.Stages(face_pass=portrait.FacePass()), detector=flaky
    )
    assert [p.ok for p in made] == [True, False, True]
    failed = made[1]
    assert failed.image is None and failed.failed_stage == "face_pass"
    assert failed.error == "The face pass failed: the faces could not be found (detector crashed)"

    broken = make(
        tiny,
        cache,
        cfg(seeds=[1]),
        stages=portrait.Stages(upscale=portrait.Upscale(long_side=96, sr_model=tiny["root"] / "missing.pth")),
    )
    assert broken[0].error is not None and broken[0].error.startswith("The upscale failed: ")
    assert "missing.pth" in broken[0].error


def test_the_output_check_withholds_an_image(tiny: dict[str, Any], cache: PipelineCache) -> None:
    class Report:
        def __init__(self, ok: bool) -> None:
            self.ok = ok
            self.findings = [] if ok else [type("F", (), {"label": "FEMALE_BREAST_EXPOSED", "score": 0.91})()]

    seen: list[tuple[int, int]] = []

    def check(image: Image.Image) -> Report:
        seen.append(image.size)
        return Report(ok=len(seen) != 1)

    stages = portrait.Stages(upscale=portrait.Upscale(long_side=80, denoise=0), check=check, check_name="test")
    made = make(tiny, cache, cfg(seeds=[1, 2]), stages=stages)
    assert seen == [(80, 80), (80, 80)]  # the check sees the final, upscaled image
    assert made[0].image is None and made[0].withheld == [("FEMALE_BREAST_EXPOSED", 0.91)]
    assert made[1].ok and portrait.stage_entries(made[1].recipe)["output_check"] == {
        "name": "output_check",
        "detector": "test",
        "ok": True,
        "seconds": portrait.stage_entries(made[1].recipe)["output_check"]["seconds"],
    }


def test_a_missing_or_broken_sr_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        upscale.SuperResolution(path=tmp_path / "none.pth").load()
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="can.t be loaded"):
        upscale.SuperResolution(path=junk).load()


def test_a_super_resolution_model_from_the_operators_file(
    tiny: dict[str, Any], cache: PipelineCache, tmp_path: Path
) -> None:
    """A tiny ESRGAN (spandrel's own architecture class, random weights) saved as a .pth state dict and loaded
    through the same spandrel loader as a real Real-ESRGAN file."""
    import torch

    from engine.upscale import import_spandrel

    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    path = tmp_path / "tiny-esrgan-x2.pth"
    torch.save(ESRGAN(num_filters=8, num_blocks=1, scale=2).state_dict(), path)
    stages = portrait.Stages(upscale=portrait.Upscale(long_side=128, denoise=0, sr_model=path))
    item = make(tiny, cache, cfg(), stages=stages)[0]
    assert item.ok and item.image.size == (128, 128)
    entry = portrait.stage_entries(item.recipe)["upscale"]
    assert entry["enlarge"] == "model" and entry["sr_model"]["scale"] == 2
    assert entry["sr_model"]["architecture"] == "ESRGAN" and len(entry["sr_model"]["sha256"]) == 64
    plain = make(tiny, cache, cfg())[0].image.resize((128, 128), Image.Resampling.LANCZOS)
    assert not np.array_equal(np.asarray(item.image), np.asarray(plain))  # the network enlarged it, not Lanczos
    with pytest.raises(ValueError, match="super-resolution model this worker doesn't have"):
        portrait.stages_from_recipe(item.recipe)
    assert portrait.stages_from_recipe(item.recipe, sr_model=path).upscale.sr_model == path


def test_pose_from_a_photo(tiny: dict[str, Any]) -> None:
    """The pose ControlNet takes any photo of a person: the engine draws its skeleton (engine.pose) and renders
    with it; an image with no person is refused with a message."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    from engine import pose

    folder = tiny["root"] / "cn-pose"
    unet = UNet2DConditionModel.from_pretrained(tiny["spec"].source, subfolder="unet")
    ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16)).save_pretrained(str(folder))
    own = PipelineCache(device="cpu", controlnets={"pose": str(folder)})
    photo = small_photo()
    item = rendering.render(
        cache=own,
        spec=tiny["spec"],
        identity_lora=tiny["lora"],
        trigger_phrase=TRIGGER,
        config=cfg(controlnet="pose", control_image=photo),
    )[0]
    skeleton = rendering.fit_image(pose.pose_skeleton(photo), 64, 64)
    assert item.recipe["control_image_sha256"] == rendering.image_sha256(skeleton)
    with pytest.raises(ValueError, match="No person was found"):
        rendering.render(
            cache=own,
            spec=tiny["spec"],
            identity_lora=tiny["lora"],
            trigger_phrase=TRIGGER,
            config=cfg(controlnet="pose", control_image=Image.new("RGB", (128, 128), (120, 130, 140))),
        )


def test_only_the_clients_face_is_regenerated_unless_asked(tiny: dict[str, Any], cache: PipelineCache) -> None:
    """A photo with two people: the largest face (the client's) is regenerated and the other person keeps their
    face, bit for bit; `faces=2` regenerates both."""
    from engine.faces import detect_faces

    photo = Image.open(FACES / "two_people.jpg").convert("RGB")
    found = detect_faces(photo)
    assert len(found) >= 2
    settings = masks.MaskSettings(margin=0.2, feather=0.1)
    one = make(tiny, cache, cfg(), stages=portrait.Stages(template_photo=portrait.TemplatePhoto(photo, settings)))[0]
    largest = found[0]
    assert one.faces == [(largest.left, largest.top, largest.right, largest.bottom)]
    keep = outside(photo.size, one.faces, settings)
    assert np.array_equal(np.asarray(one.image)[keep], np.asarray(photo)[keep])  # the other face included
    both = make(
        tiny, cache, cfg(), stages=portrait.Stages(template_photo=portrait.TemplatePhoto(photo, settings, faces=2))
    )[0]
    assert len(both.faces) == 2 and portrait.stage_entries(both.recipe)["template_photo"]["max_faces"] == 2
    other = both.faces[1]
    region = (slice(other[1], other[3]), slice(other[0], other[2]))
    assert not np.array_equal(np.asarray(both.image)[region], np.asarray(photo)[region])


# --- batching across the call's portraits -----------------------------------------------------------------------


def test_the_face_pass_and_the_upscale_batch_across_portraits_with_the_same_pixels_per_image(
    tiny: dict[str, Any], cache: PipelineCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three portraits: their face crops go into one render call and their tiles into one more (besides the base
    render), each crop and tile with its own seed; every portrait is the one it is when rendered alone, up to the
    last bits of another batch's arithmetic (measured: at most 2 of 255 in under 1 % of the values, one of the three
    identical)."""
    stages = portrait.Stages(face_pass=portrait.FacePass(), upscale=portrait.Upscale(long_side=96, denoise=0.5))
    calls: list[tuple[int, int]] = []
    real_render = portrait.render

    def counting(**kwargs: Any) -> list[Any]:
        calls.append((len(kwargs["config"].seeds), kwargs["config"].batch_size))
        return real_render(**kwargs)

    monkeypatch.setattr(portrait, "render", counting)
    together = make(tiny, cache, cfg(seeds=[11, 12, 13]), stages=stages, detector=fixed_faces)
    tiles = portrait.stage_entries(together[0].recipe)["upscale"]["tiles"]
    assert calls == [(3, 1), (3, 3), (3 * tiles, 4)]  # base, the three faces, every tile (CPU: batches of 4)
    for made in together:
        entries = portrait.stage_entries(made.recipe)
        assert entries["face_pass"]["seconds"] > 0 and entries["upscale"]["seconds"] > 0
    images = [np.asarray(made.image).astype(int) for made in together]
    for made, batched in zip(together, images, strict=True):
        alone = make(tiny, cache, cfg(seeds=[made.seed]), stages=stages, detector=fixed_faces)[0]
        assert alone.faces == made.faces and alone.image.size == made.image.size == (96, 96)
        difference = np.abs(np.asarray(alone.image).astype(int) - batched)
        # another batch changes the last bits of the float arithmetic (the CPU's convolutions too), never the image:
        # at most 2 of 255 anywhere, where another seed differs by far more
        assert difference.max() <= 2, made.seed
    assert np.abs(images[0] - images[1]).max() > 20


def test_a_failed_batched_stage_is_rendered_portrait_by_portrait(
    tiny: dict[str, Any], cache: PipelineCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batched face pass that fails (here: any call holding seed 2's face) fails only the portrait it belongs
    to: the call is rendered again one portrait at a time."""
    real_render = portrait.render
    bad_face = portrait._stage_seed(2, 2, 0)

    def failing(**kwargs: Any) -> list[Any]:
        if bad_face in kwargs["config"].seeds:
            raise ValueError("this face can't be rendered")
        return real_render(**kwargs)

    monkeypatch.setattr(portrait, "render", failing)
    made = make(
        tiny, cache, cfg(seeds=[1, 2, 3]), stages=portrait.Stages(face_pass=portrait.FacePass()), detector=fixed_faces
    )
    assert [p.ok for p in made] == [True, False, True]
    assert made[1].failed_stage == "face_pass" and made[1].error == "The face pass failed: this face can't be rendered"
    assert made[0].faces == [BOX] and made[2].faces == [BOX]


def test_render_batch_sizes_follow_the_family_the_size_and_the_gpu_memory() -> None:
    assert rendering.render_batch_size("sd15", 0) == rendering.CPU_RENDER_BATCH == 4  # the CPU
    assert rendering.render_batch_size("sd15", 79.6) == 16 and rendering.render_batch_size("sdxl", 79.6) == 8
    assert rendering.render_batch_size("sdxl", 139.8) == 16 and rendering.render_batch_size("sdxl", 24) == 1
    assert rendering.render_batch_size("sd15", 16) == 6
    assert rendering.render_batch_size("sdxl", 79.6, 512, 512) == 16  # a quarter of the pixels
    assert rendering.render_batch_size("sdxl", 12) == 1  # never below 1
