"""Identity LoRA training (engine/training.py) with the real diffusers and peft code on the tiny
models, on the CPU: train, save, load with plain diffusers, render; resume a killed run; cancel; out of memory."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from engine import training
from engine.checkpoints import BaseModelSpec, build_tiny_model
from engine.training import (
    LORA_FILENAME,
    VALIDATION_STEP_SHARE,
    TrainConfig,
    TrainingCancelled,
    TrainingFailed,
    TrainProgress,
    TrainSchedule,
    _validation_step_equivalents,
    auto_batch_size,
    default_steps,
    needs_gradient_checkpointing,
    prepare_training_images,
    train_identity_lora,
    training_schedule,
)
from tests.face_fixtures import FACES

pytest.importorskip("diffusers")
pytest.importorskip("peft")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "tiny-models"  # shared with the other engine tests (idempotent build)


@pytest.fixture(scope="module")
def sd15(tiny_root: Path) -> BaseModelSpec:
    return build_tiny_model(tiny_root, "sd15")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    if FACES.is_dir():
        return [Image.open(FACES / f"person_a_0{i}.jpg").convert("RGB") for i in range(1, 4)]
    rng = np.random.default_rng(0)  # without the fixtures: centre crops of noise still train
    return [Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)) for _ in range(3)]


def _config(**overrides: Any) -> TrainConfig:
    """Few steps, one cheap validation prompt, and no renders unless a test asks for scoring."""
    values: dict[str, Any] = {
        "steps": 4,
        "checkpoint_every": 2,
        "rank": 4,
        "validation_prompts": ("photo of {subject}",),
        "validation_steps": 1,
        "scored_checkpoints": 1,
    }
    values.update(overrides)
    return TrainConfig(**values)


def _lora(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_config_defaults() -> None:
    config = TrainConfig()
    assert config.trigger == "ohwx" and config.class_word == "person" and config.rank == 16
    assert config.lora_alpha == 16 and config.learning_rate == 1e-4 and config.batch_size is None  # the device's
    assert config.lr_scaling == "sqrt" and config.fused_optimizer and config.channels_last
    assert not config.compile_unet and config.loss_every == 10
    assert config.trigger_phrase() == "ohwx person" and config.caption() == "photo of ohwx person"
    assert [default_steps(n) for n in (0, 1, 3, 4, 20)] == [1, 200, 600, 800, 800]
    assert config.total_steps(20) == 800 and TrainConfig(steps=50).total_steps(20) == 50
    assert TrainConfig(alpha=8).lora_alpha == 8
    bad_values: list[dict[str, Any]] = [
        {"steps": 0},
        {"rank": 0},
        {"trigger": " "},
        {"resolution": 100},
        {"learning_rate": 0},
        {"batch_size": 0},
        {"lr_scaling": "cubic"},
        {"loss_every": 0},
    ]
    for bad in bad_values:
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_gradient_checkpointing_only_where_the_gpu_memory_calls_for_it() -> None:
    assert TrainConfig().gradient_checkpointing is None  # automatic
    assert not needs_gradient_checkpointing("sd15", 80) and needs_gradient_checkpointing("sd15", 12)
    assert not needs_gradient_checkpointing("sdxl", 80) and needs_gradient_checkpointing("sdxl", 24)
    assert needs_gradient_checkpointing("sd15", 20, batch_size=4)  # a bigger batch needs more room


@pytest.mark.skipif(not FACES.is_dir(), reason="face fixtures missing")
def test_crops_are_square_and_centred_on_the_face(photos: list[Image.Image]) -> None:
    from engine.faces import detect_faces

    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    crops = prepare_training_images([photos[0], noise], 256)
    assert [c.size for c in crops] == [(256, 256), (256, 256)] and all(c.mode == "RGB" for c in crops)
    boxes = detect_faces(crops[0])
    assert boxes, "the face must be in the crop"
    centre_x = (boxes[0].left + boxes[0].right) / 2
    assert abs(centre_x - 128) < 40 and boxes[0].width > 256 / 4  # head and shoulders, face in the middle


def test_trains_saves_and_loads_with_plain_diffusers(sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path):
    from diffusers import StableDiffusionPipeline

    reports: list[TrainProgress] = []
    config = _config(steps=3, scored_checkpoints=2, validation_prompts=("photo of {subject}", "{subject}, smiling"))
    result = train_identity_lora(
        spec=sd15, images=photos, work_dir=tmp_path, config=config, progress=reports.append, device="cpu"
    )
    assert result.lora_path == tmp_path / "final" / LORA_FILENAME and result.lora_path.is_file()
    assert result.steps == 3 and result.batch_size == 1 and result.resumed_from is None
    assert result.trigger == "ohwx" and result.class_word == "person" and result.seconds > 0

    steps = [r for r in reports if not r.message]
    assert [r.step for r in steps] == [1, 2, 3] and all(r.total == 3 for r in steps)
    assert all(r.loss is not None and np.isfinite(r.loss) for r in steps)
    assert all(r.eta_seconds is not None and r.eta_seconds > 0 for r in steps)
    # After the last step the time left is the checkpoint scoring still to come (see the test below).
    assert _validation_step_equivalents(config, 3) > 0
    assert any("likeness" in r.message for r in reports)

    # checkpoints at 2 and 3 were both scored on their validation renders; ties go to the latest
    assert set(result.scores) == {2, 3} and all(0 <= s <= 100 for s in result.scores.values())
    assert result.best_step == max(result.scores, key=lambda s: (result.scores[s], s))
    assert [image.size for image in result.validation_images] == [(64, 64), (64, 64)]  # one per prompt
    if FACES.is_dir():
        assert result.centroid is not None and result.centroid.shape == (128,)
    assert not list(tmp_path.glob(".tmp-*")) and not list((tmp_path / "checkpoints").glob(".tmp-*"))

    weights = _lora(result.lora_path)
    assert weights and all(key.startswith("unet.") for key in weights)
    assert any(".lora.up." in key and weights[key].abs().sum() > 0 for key in weights)  # it learned something

    pipe = StableDiffusionPipeline.from_pretrained(sd15.source)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(result.lora_path.parent))  # the folder, as users do
    assert pipe.get_active_adapters()
    image = pipe(
        "photo of ohwx person", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0)
    ).images[0]
    assert image.size == (64, 64)
    pipe.unload_lora_weights()
    pipe.load_lora_weights(str(result.lora_path))  # the file itself loads too
    assert pipe.get_active_adapters()


def test_sdxl_trains_with_text_encoder_lora(tiny_root: Path, photos: list[Image.Image], tmp_path: Path) -> None:
    from diffusers import StableDiffusionXLPipeline

    spec = build_tiny_model(tiny_root, "sdxl")
    result = train_identity_lora(
        spec=spec, images=photos[:2], work_dir=tmp_path, config=_config(steps=2, train_text_encoder=True)
    )
    weights = _lora(result.lora_path)
    prefixes = {key.split(".", 1)[0] for key in weights}
    assert prefixes == {"unet", "text_encoder", "text_encoder_2"}
    pipe = StableDiffusionXLPipeline.from_pretrained(spec.source)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(result.lora_path.parent))
    assert pipe.get_active_adapters()
    assert pipe("photo of ohwx person", num_inference_steps=1, height=64, width=64).images[0].size == (64, 64)


def test_killed_run_resumes_from_its_checkpoint(sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path):
    class Killed(Exception):
        pass

    def kill_after_step_3(report: TrainProgress) -> None:
        if report.step == 3 and not report.message:
            raise Killed  # the worker dies after step 3: the checkpoint of step 2 is the last one

    work = tmp_path / "killed"
    with pytest.raises(Killed):
        train_identity_lora(spec=sd15, images=photos, work_dir=work, config=_config(), progress=kill_after_step_3)
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["step-2"]

    reports: list[TrainProgress] = []
    resumed = train_identity_lora(spec=sd15, images=photos, work_dir=work, config=_config(), progress=reports.append)
    assert resumed.resumed_from == 2
    assert [r.step for r in reports if not r.message] == [3, 4]  # continued, not started over
    assert any(r.message == "Resuming from step 2" for r in reports)

    straight = train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "straight", config=_config())
    a, b = _lora(resumed.lora_path), _lora(straight.lora_path)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # exactly where an uninterrupted run ends

    # a finished run called again only re-selects and re-saves (nothing left to train)
    again: list[TrainProgress] = []
    train_identity_lora(spec=sd15, images=photos, work_dir=work, config=_config(), progress=again.append)
    assert not [r for r in again if not r.message]


def test_each_complete_checkpoint_is_handed_over_and_a_copy_resumes_on_another_host(
    sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path
):
    """on_checkpoint gets every checkpoint once complete; a copy of the latest put into another (empty) work folder
    at checkpoint_folder() makes a run there continue exactly as an uninterrupted one (what the "double.train"
    job does through shared storage)."""
    import shutil

    class Killed(Exception):
        pass

    shared = tmp_path / "shared"
    handed: list[int] = []

    def copy(step: int, folder: Path) -> None:
        assert (folder / "state.json").is_file() and folder == training.checkpoint_folder(folder.parents[1], step)
        handed.append(step)
        shutil.copytree(folder, shared / f"step-{step}")

    def kill_after_step_3(report: TrainProgress) -> None:
        if report.step == 3 and not report.message:
            raise Killed

    host_a = tmp_path / "host-a"
    with pytest.raises(Killed):
        train_identity_lora(
            spec=sd15, images=photos, work_dir=host_a, config=_config(), progress=kill_after_step_3, on_checkpoint=copy
        )
    assert handed == [2] and training.latest_checkpoint(host_a) == 2

    host_b = tmp_path / "host-b"
    assert training.latest_checkpoint(host_b) is None
    target = training.checkpoint_folder(host_b, 2)
    target.parent.mkdir(parents=True)
    shutil.copytree(shared / "step-2", target)
    assert training.latest_checkpoint(host_b) == 2
    resumed = train_identity_lora(spec=sd15, images=photos, work_dir=host_b, config=_config(), on_checkpoint=copy)
    assert resumed.resumed_from == 2 and handed == [2, 4]

    straight = train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "straight", config=_config())
    a, b = _lora(resumed.lora_path), _lora(straight.lora_path)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_cancel_leaves_the_last_checkpoint_intact(sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path):
    asked: list[int] = []

    def should_cancel() -> bool:
        asked.append(1)
        return len(asked) > 3  # asked before steps 1..4: cancel before step 4

    with pytest.raises(TrainingCancelled, match="step 3 of 4"):
        train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path, config=_config(), should_cancel=should_cancel)
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-2"]  # no half-written folder
    step2 = checkpoints / "step-2"
    assert json.loads((step2 / "state.json").read_text())["step"] == 2
    assert (step2 / "lora.safetensors").is_file() and (step2 / "training_state.pt").is_file()
    assert not (tmp_path / "final").exists()


def test_checkpoints_are_pruned(sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path) -> None:
    train_identity_lora(
        spec=sd15, images=photos, work_dir=tmp_path, config=_config(steps=5, checkpoint_every=1, scored_checkpoints=3)
    )
    found = {p.name: sorted(f.name for f in p.iterdir()) for p in (tmp_path / "checkpoints").iterdir()}
    full = ["lora.safetensors", "state.json", "training_state.pt"]
    # the last two whole, the third kept for scoring (LoRA only), older ones gone
    assert found == {"step-5": full, "step-4": full, "step-3": ["lora.safetensors", "state.json"]}


def test_out_of_memory_retries_with_half_the_batch(
    sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = training._train_step
    batches: list[int] = []

    def step_that_runs_out_of_memory_once(state: Any, indices: list[int]) -> torch.Tensor:
        batches.append(len(indices))
        if len(batches) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(state, indices)

    monkeypatch.setattr(training, "_train_step", step_that_runs_out_of_memory_once)
    reports: list[TrainProgress] = []
    result = train_identity_lora(
        spec=sd15, images=photos, work_dir=tmp_path, config=_config(steps=2, batch_size=2), progress=reports.append
    )
    assert result.batch_size == 1 and batches == [2, 1, 1]
    assert any("retrying with batch size 1" in r.message for r in reports)


def test_out_of_memory_twice_fails_with_a_clear_message(
    sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_out_of_memory(state: Any, indices: list[int]) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(training, "_train_step", always_out_of_memory)
    with pytest.raises(TrainingFailed, match="ran out of memory"):
        train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path, config=_config(steps=2, batch_size=2))


def test_refuses_what_it_cannot_train(sd15: BaseModelSpec, tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="no photos"):
        train_identity_lora(spec=sd15, images=[], work_dir=tmp_path, config=_config())
    if not torch.cuda.is_available():
        with pytest.raises(TrainingFailed, match="CUDA"):
            train_identity_lora(
                spec=sd15, images=[Image.new("RGB", (64, 64))], work_dir=tmp_path, config=_config(), device="cuda"
            )


def test_the_time_left_counts_the_checkpoint_scoring_in_training_steps() -> None:
    """The images of the last `scored_checkpoints` checkpoints (one per validation prompt), `validation_steps`
    each, at VALIDATION_STEP_SHARE of a training step; none when only one checkpoint would be scored."""
    config = _config(steps=300, scored_checkpoints=3, validation_steps=20, checkpoint_every=100)
    prompts = len(config.validation_prompts)
    assert _validation_step_equivalents(config, 300) == VALIDATION_STEP_SHARE * 3 * prompts * 20
    assert _validation_step_equivalents(config, 150) == VALIDATION_STEP_SHARE * 2 * prompts * 20  # 2 checkpoints
    assert _validation_step_equivalents(_config(steps=10, scored_checkpoints=1), 10) == 0


def test_the_default_schedule_sees_the_same_images_in_fewer_larger_steps_on_a_gpu() -> None:
    """Batch 4 where an 80 GB GPU trains SD 1.5 without gradient checkpointing, 2 for SDXL, 1 on small GPUs and the
    CPU; steps = ceil(min(200 x photos, 800) / batch), the learning rate x sqrt(batch), checkpoints at the same
    points in the data; batch_size=1 is the old schedule."""
    assert auto_batch_size("sd15", cuda=True, gpu_memory_gib=79.6) == 4
    assert auto_batch_size("sdxl", cuda=True, gpu_memory_gib=79.6) == 2  # 40 GiB x sqrt(4) does not fit
    assert auto_batch_size("sdxl", cuda=True, gpu_memory_gib=139.8) == 4
    assert auto_batch_size("sd15", cuda=True, gpu_memory_gib=12) == 1
    assert auto_batch_size("sd15", cuda=False, gpu_memory_gib=0) == 1

    h100 = training_schedule(TrainConfig(), 20, family="sd15", cuda=True, gpu_memory_gib=79.6)
    assert h100 == TrainSchedule(batch_size=4, steps=200, learning_rate=pytest.approx(2e-4), checkpoint_every=25)
    assert h100.images == 800 == default_steps(20)  # the same images as 800 steps of 1
    assert training_schedule(TrainConfig(), 3, family="sd15", cuda=True, gpu_memory_gib=79.6).steps == 150
    sdxl = training_schedule(TrainConfig(), 20, family="sdxl", cuda=True, gpu_memory_gib=79.6)
    assert (sdxl.batch_size, sdxl.steps, sdxl.checkpoint_every) == (2, 400, 50)
    assert sdxl.learning_rate == pytest.approx(1e-4 * 2**0.5)

    old = training_schedule(TrainConfig(batch_size=1), 20, family="sd15", cuda=True, gpu_memory_gib=79.6)
    assert old == TrainSchedule(batch_size=1, steps=800, learning_rate=1e-4, checkpoint_every=100)
    assert training_schedule(TrainConfig(), 20) == old  # the CPU
    linear = training_schedule(TrainConfig(batch_size=4, lr_scaling="linear"), 20)
    assert linear.learning_rate == pytest.approx(4e-4) and linear.steps == 200
    assert training_schedule(TrainConfig(batch_size=4, lr_scaling="none"), 20).learning_rate == 1e-4
    assert training_schedule(TrainConfig(batch_size=4, steps=60), 20).steps == 60  # explicit steps stay
    # without a batch, given steps count batch-1 steps too (ENGINE_TRAIN_STEPS=800: 200 steps of 4 on an H100)
    given = training_schedule(TrainConfig(steps=800), 20, family="sd15", cuda=True, gpu_memory_gib=79.6)
    assert (given.batch_size, given.steps) == (4, 200)
    assert training_schedule(TrainConfig(steps=300), 20).steps == 300  # the CPU: batch 1
    assert TrainConfig().total_steps(20, batch_size=4) == 200 and TrainConfig().total_steps(20) == 800


def test_a_batch_4_schedule_is_deterministic_and_resumes_exactly(
    sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path
) -> None:
    """Batch 4 (forced here: the CPU's default is 1) at sqrt-scaled learning rate: the same photos and config give
    the same LoRA, and a run killed after its first checkpoint resumes to exactly where an uninterrupted one ends."""
    config = _config(steps=None, batch_size=4, checkpoint_every=8)  # 3 photos: ceil(600 / 4) = 150 steps...
    config.steps = 4  # ...too many for a test: 4 steps of 4, a checkpoint every ceil(8 / 4) = 2
    one = train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "one", config=config)
    two = train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "two", config=config)
    assert one.batch_size == 4 and one.learning_rate == pytest.approx(2e-4) and one.steps == 4
    a, b = _lora(one.lora_path), _lora(two.lora_path)
    assert all(torch.equal(a[k], b[k]) for k in a)

    class Killed(Exception):
        pass

    def kill_after_step_3(report: TrainProgress) -> None:
        if report.step == 3 and not report.message:
            raise Killed

    with pytest.raises(Killed):
        train_identity_lora(
            spec=sd15, images=photos, work_dir=tmp_path / "killed", config=config, progress=kill_after_step_3
        )
    resumed = train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "killed", config=config)
    assert resumed.resumed_from == 2
    c = _lora(resumed.lora_path)
    assert all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)
    # batch 1 at the unscaled rate is another run
    single = _lora(train_identity_lora(spec=sd15, images=photos, work_dir=tmp_path / "b1", config=_config()).lora_path)
    assert not all(torch.equal(a[k], single[k]) for k in a)


def test_the_step_loop_reads_the_loss_only_every_loss_every_steps(
    sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No host-device synchronisation per step: the loss stays on the device and is read (one conversion to a
    Python number) at the first step, every `loss_every` steps and at checkpoints; every progress report still
    carries the mean loss of the latest readout. The photos' indices come from a table built before the loop."""
    reads: list[int] = []
    steps_done: list[int] = []
    real_step = training._train_step
    real_float, real_item = torch.Tensor.__float__, torch.Tensor.item

    def counted_step(state: Any, indices: Any) -> torch.Tensor:
        assert isinstance(indices, torch.Tensor) and indices.device == state.device  # no list -> device copy
        steps_done.append(1)
        return real_step(state, indices)

    def record() -> None:
        # The CPU AdamW reads its step counter, which lives on the CPU whatever the device (on CUDA the fused
        # kernel keeps it on the device and never reads it): not a host-device synchronisation.
        if not any("/torch/optim/" in frame.filename for frame in traceback.extract_stack()):
            reads.append(len(steps_done))

    def float_(tensor: torch.Tensor) -> float:
        record()
        return real_float(tensor)

    def item(tensor: torch.Tensor) -> Any:
        record()
        return real_item(tensor)

    monkeypatch.setattr(training, "_train_step", counted_step)
    reports: list[TrainProgress] = []

    def progress(report: TrainProgress) -> None:
        if not report.message:
            reports.append(report)

    config = _config(steps=12, checkpoint_every=12, loss_every=5)
    with monkeypatch.context() as patched:
        patched.setattr(torch.Tensor, "__float__", float_)
        patched.setattr(torch.Tensor, "item", item)
        training._run_steps(
            training._set_up(
                spec=sd15,
                prepared=prepare_training_images(photos, 64),
                work_dir=tmp_path,
                config=config,
                device=torch.device("cpu"),
                half_dtype=torch.float32,
                gradient_checkpointing=False,
                resolution=64,
                schedule=training_schedule(config, len(photos)),
            ),
            work_dir=tmp_path,
            config=config,
            batch_size=1,
            photos=len(photos),
            progress=progress,
            should_cancel=None,
        )
    assert [step for step in reads if step >= 1] == [1, 5, 10, 12]  # not once per step
    assert [r.step for r in reports] == list(range(1, 13))
    assert all(r.loss is not None and np.isfinite(r.loss) for r in reports)
    assert reports[1].loss == reports[0].loss != reports[4].loss  # steps 2-4 repeat the readout of step 1


def test_attention_is_sdpa_everywhere(sd15: BaseModelSpec, photos: list[Image.Image], tmp_path: Path) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    config = _config()
    attempt = training._set_up(
        spec=sd15,
        prepared=prepare_training_images(photos, 64),
        work_dir=tmp_path,
        config=config,
        device=torch.device("cpu"),
        half_dtype=torch.float32,
        gradient_checkpointing=False,
        resolution=64,
        schedule=training_schedule(config, len(photos)),
    )
    unet = attempt.state.models.unet
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    unet.set_attn_processor(AttnProcessor())  # a checkpoint that asks for the classic processor gets SDPA anyway
    training._use_sdpa(unet)
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    # CPU: the plain AdamW (fused is CUDA only) and the default memory format
    assert not attempt.state.optimizer.defaults.get("fused")
