"""`manage.py engine`: train on a folder of fixture photos with the tiny model on CPU, then render a prompt into
the output folder; build the tiny model; list the registry. No studio and no database needed."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.face_fixtures import FACES


@pytest.fixture
def engine_settings(settings: Any, tmp_path: Path) -> Path:
    settings.ENGINE_MODELS_DIR = tmp_path / "models"
    settings.ENGINE_BASE_MODELS = []
    settings.ENGINE_ENABLED_MODELS = []
    settings.ENGINE_DEFAULT_MODEL = "tiny-sd15"
    settings.ENGINE_TRAIN_STEPS = 0
    settings.ENGINE_DEVICE = "cpu"
    return tmp_path


def test_train_then_render_from_a_folder_of_photos(engine_settings: Path) -> None:
    photos = engine_settings / "photos"
    photos.mkdir()
    for name in ("person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"):
        shutil.copy(FACES / name, photos / name)
    (photos / "notes.txt").write_text("not a photo")
    out = engine_settings / "out"
    stdout = io.StringIO()
    call_command(
        "engine",
        "train",
        "--photos",
        str(photos),
        "--out",
        str(out),
        "--steps",
        "3",
        "--class-word",
        "woman",
        "--prompt",
        "portrait of {subject}",
        "--images",
        "2",
        "--render-steps",
        "2",
        "--quiet",
        stdout=stdout,
    )
    text = stdout.getvalue()
    assert "demo model" in text and "Trained 3 steps" in text and "Rendered 2 of 2 image(s)" in text
    assert (out / "lora.safetensors").stat().st_size > 0 and not (out / "work").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["photos"] == 4 and metrics["trigger_phrase"].endswith(" woman")
    portraits = json.loads((out / "portraits.json").read_text())
    assert [p["rank"] for p in portraits] == [1, 2]
    for entry in portraits:
        assert (out / entry["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert entry["seed"] in (0, 1)

    # The LoRA in the output folder is the standard format plain diffusers loads.
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(engine_settings / "models" / "tiny-sd15"))
    pipe.load_lora_weights(str(out / "lora.safetensors"), adapter_name="client")
    assert "client" in pipe.get_list_adapters().get("unet", [])


def test_refusals_and_build_tiny(engine_settings: Path) -> None:
    with pytest.raises(CommandError, match="not a folder"):
        call_command("engine", "train", "--photos", str(engine_settings / "missing"), "--out", str(engine_settings))
    empty = engine_settings / "empty"
    empty.mkdir()
    with pytest.raises(CommandError, match="No usable photo"):
        call_command("engine", "train", "--photos", str(empty), "--out", str(engine_settings / "o"))
    (empty / "a.jpg").write_bytes((FACES / "person_a_01.jpg").read_bytes())
    with pytest.raises(CommandError, match="no base model"):
        call_command("engine", "train", "--photos", str(empty), "--out", str(engine_settings / "o"), "--model", "x")
    out = io.StringIO()
    call_command("engine", "build-tiny", stdout=out)
    assert (engine_settings / "models" / "tiny-sd15" / "model_index.json").exists()
    assert "ready" in out.getvalue()


def test_render_from_a_doubles_folder_without_a_database(engine_settings: Path, tmp_path: Path) -> None:
    """`engine render --double DIR --out DIR` renders from what `engine train --out` writes: PNGs and
    portraits.json with each image's file, seed, likeness, flags, recipe (every stage) and the faces a face pass
    regenerated (none: the tiny model's noise has no face). A folder that holds no double is refused."""
    double = _double_folder(engine_settings, tmp_path)
    out = tmp_path / "render"
    stdout = io.StringIO()
    call_command(
        "engine",
        "render",
        "--double",
        str(double),
        "--out",
        str(out),
        "--prompt",
        "studio portrait of {subject}",
        "--images",
        "2",
        "--seed",
        "5",
        "--steps",
        "2",
        "--quiet",
        stdout=stdout,
    )
    assert "Rendered 2 of 2 image(s)" in stdout.getvalue()
    portraits = json.loads((out / "portraits.json").read_text())
    assert [p["rank"] for p in portraits] == [1, 2] and sorted(p["seed"] for p in portraits) == [5, 6]
    for entry in portraits:
        assert (out / entry["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert entry["recipe"]["seed"] == entry["seed"] and entry["recipe"]["steps"] == 2
        assert "ohwx woman" in json.dumps(entry["recipe"]) and entry["faces"] == []
        stages = [stage["name"] for stage in entry["recipe"]["stages"]]
        assert stages == ["base", "face_pass", "upscale", "output_check"]
        assert entry["likeness"] is None  # no centroid.npy in this folder: nothing to compare with

    with pytest.raises(CommandError, match="holds no double"):
        call_command("engine", "render", "--double", str(tmp_path / "lora"), "--out", str(out), "--prompt", "a {x}")


def _double_folder(engine_settings: Path, tmp_path: Path) -> Path:
    from engine.checkpoints import build_tiny_model
    from tests.generation.runs_support import make_lora_bytes

    spec = build_tiny_model(engine_settings / "models", "sd15")
    double = tmp_path / "double"
    double.mkdir()
    (double / "lora.safetensors").write_bytes(make_lora_bytes(spec, tmp_path / "lora", seed=1))
    (double / "metrics.json").write_text(json.dumps({"base_model": "tiny-sd15", "trigger_phrase": "ohwx woman"}))
    return double


def test_render_into_a_template_photo_at_print_size(engine_settings: Path, tmp_path: Path) -> None:
    """`--template-photo FILE --long-side N`: the photo resized to N px on its long side, its face regenerated by
    inpainting; every pixel farther than the feathered margin from the regenerated face box is the photo's."""
    import numpy as np
    from PIL import Image

    from engine import masks, portrait

    double = _double_folder(engine_settings, tmp_path)
    photo = FACES / "person_a_02.jpg"
    out = tmp_path / "photo-render"
    stdout = io.StringIO()
    call_command(
        "engine",
        "render",
        "--double",
        str(double),
        "--out",
        str(out),
        "--prompt",
        "wedding portrait of {subject}",
        "--images",
        "1",
        "--steps",
        "2",
        "--template-photo",
        str(photo),
        "--long-side",
        "480",
        "--mask-margin",
        "0.25",
        "--mask-feather",
        "0.1",
        "--quiet",
        stdout=stdout,
    )
    (entry,) = json.loads((out / "portraits.json").read_text())
    image = Image.open(out / entry["file"]).convert("RGB")
    assert max(image.size) == 480 and entry["size"] == list(image.size)
    assert len(entry["faces"]) == 1
    names = [stage["name"] for stage in entry["recipe"]["stages"]]
    assert names == ["base", "template_photo", "face_pass", "upscale", "output_check"]
    expected = np.asarray(portrait.prepare_photo(Image.open(photo), 480))
    keep = np.ones(expected.shape[:2], dtype=bool)
    left, top, right, bottom = masks.support_box(tuple(entry["faces"][0]), masks.MaskSettings(0.25, 0.1), image.size)
    keep[top:bottom, left:right] = False
    assert np.array_equal(np.asarray(image)[keep], expected[keep])
    assert not np.array_equal(np.asarray(image)[~keep], expected[~keep])


def test_render_at_print_size_without_a_face_pass(engine_settings: Path, tmp_path: Path) -> None:
    double = _double_folder(engine_settings, tmp_path)
    out = tmp_path / "print"
    call_command(
        "engine",
        "render",
        "--double",
        str(double),
        "--out",
        str(out),
        "--prompt",
        "portrait of {subject}",
        "--images",
        "1",
        "--steps",
        "2",
        "--long-side",
        "100",
        "--no-face-pass",
        "--quiet",
        stdout=io.StringIO(),
    )
    (entry,) = json.loads((out / "portraits.json").read_text())
    assert entry["size"] == [100, 100] and entry["recipe"]["output_size"] == [100, 100]
    stages = {stage["name"]: stage for stage in entry["recipe"]["stages"]}
    assert stages["face_pass"] == {"name": "face_pass", "enabled": False, "seconds": stages["face_pass"]["seconds"]}
    assert stages["upscale"]["long_side"] == 100 and stages["upscale"]["tiles"] >= 4
    with pytest.raises(CommandError, match="--long-side must be from 64 to 16384"):
        call_command(
            "engine",
            "render",
            "--double",
            str(double),
            "--out",
            str(out),
            "--prompt",
            "a {subject}",
            "--long-side",
            "10",
        )
