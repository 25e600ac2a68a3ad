"""Likeness report benchmark: train a double on part of a client's photos, render templates, judge them against
the photos it was **not** trained on (engine.likeness.likeness_report), then "more like me" and best-vs-last.

1. The client's photos are split **by original**: files named ``<original>-<variant>.<ext>`` (the default set,
   tests/face_fixtures.build_set: the five shots of each of person A's four fixture photos, 20 photos) are
   grouped by ``<original>``; the last ``--heldout`` originals (by name) are held out, so no variant of a held-out
   photo is trained on. A file without ``-`` in its name is its own original.
2. A double is trained on the rest (engine.training.train_identity_lora; ``--steps``, checkpoints every
   ``steps // 2`` below 200 steps so that two are scored, else every 100; validation renders with
   ``--render-steps`` denoising steps).
3. A small template set (``--prompts`` of PROMPTS × ``--seeds``) is rendered through the portrait pipeline
   (engine.portrait: the base render and the face pass; ``--no-face-pass`` for the base render alone) and
   every portrait is scored by the report: likeness to the held-out centroid, nearest training photo, copy guard.
4. "More like me": each portrait's recipe through rendering.more_like_me, config_from_recipe and
   portrait.stages_from_recipe (the face pass's identity weight rises too), rendered again
   and scored again: did the likeness rise (per portrait with a face in both, and the median)?
5. Best vs last checkpoint: training keeps the mean validation likeness of its last checkpoints (against the
   training photos' centroid) and keeps the best; the last checkpoint's LoRA is converted to the diffusers format
   here and renders the same template set, scored against the held-out centroid like the best's (only when it
   is not the best: training keeps the latest on a tie, so on the tiny model, where every score is 0, the best
   is the last).

    python bench/likeness.py [--threads 1]                    # tiny SD 1.5 model on the CPU (25 s on 2 cores)
    python bench/likeness.py --photos DIR                     # a client's photos (see 1. for the names)
    python bench/likeness.py --model /models/sd15 --family sd15 --steps 800 --device cuda   # real weights (GPU)
    python bench/likeness.py --model /models/sd15 --family sd15 --steps 800 --device cuda --batch 1   # the old
                                                              # schedule, to compare with the default (batch 4 x 200
                                                              # on an H100; --steps counts batch-1 steps)

On the tiny model the images are noise: no face is found, so every likeness figure is n/a; the mechanics
(split, training, rendering, scoring, more like me, last-checkpoint rendering) run end to end all the same.
Prints one summary line at the end.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.face_fixtures import FACES, build_set  # noqa: E402  (../shared beside the project, or beside its origin)

PROMPTS = (
    "studio portrait photo of {subject}, soft light, 85mm",
    "photo of {subject} outdoors, natural light, smiling",
    "black and white portrait of {subject}, dramatic light",
)
NEGATIVE = "blurry, deformed, watermark, text"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


# --------------------------------------------------------------------------------------------- photos


def original_of(path: Path) -> str:
    """The original a photo file was made from: its name up to the first ``-`` (the whole stem without one)."""
    return path.stem.split("-", 1)[0]


def split_by_original(paths: list[Path], heldout: int) -> tuple[list[Path], list[Path]]:
    """(training, held-out) photo files: the last ``heldout`` originals by name are held out, whole."""
    originals = sorted({original_of(p) for p in paths})
    if not 1 <= heldout < len(originals):
        raise ValueError(f"cannot hold out {heldout} of {len(originals)} original photo(s): keep at least one of each")
    held = set(originals[-heldout:])
    return (
        sorted(p for p in paths if original_of(p) not in held),
        sorted(p for p in paths if original_of(p) in held),
    )


def client_photos(folder: Path | None, work: Path) -> list[Path]:
    """The photo files of ``folder``, or the default 20-photo set of person A built under ``work``."""
    if folder is not None:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"no photos in {folder}")
        return paths
    if not FACES.is_dir():
        raise SystemExit(f"face fixtures missing at {FACES}: give --photos DIR")
    out = work / "photos"
    out.mkdir(parents=True, exist_ok=True)
    return build_set(out)


def load(paths: list[Path]) -> list[Any]:
    from PIL import Image, ImageOps

    images = []
    for path in paths:
        with Image.open(path) as opened:
            images.append(ImageOps.exif_transpose(opened).convert("RGB"))
    return images


# --------------------------------------------------------------------------------------------- steps


@dataclass
class Rendered:
    """A set of portraits and their report."""

    images: list[Any]
    recipes: list[dict[str, Any]]
    report: Any


@dataclass
class Outcome:
    """What the run measured (see :func:`summary_line`)."""

    model: str
    is_demo: bool
    device: str
    photos: int
    originals: int
    training_photos: int
    heldout_photos: int
    heldout_originals: int
    steps: int
    train_seconds: float
    best_step: int
    last_step: int
    checkpoint_scores: dict[int, float]
    base: Rendered
    more: Rendered
    last: Rendered | None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def embeddings(images: list[Any]) -> list[Any]:
    from engine.likeness import main_face_embedding

    return [main_face_embedding(image) for image in images]


def render_set(
    cache: Any,
    spec: Any,
    lora: Path,
    trigger: str,
    configs: list[Any],
    heldout: list[Any],
    training: list[Any],
    stages: list[Any] | None = None,
) -> Rendered:
    """Render every config (one seed each or more) through the portrait pipeline (engine.portrait: the base render
    and, when `stages` gives them, the face pass...) and score all the portraits with the likeness report."""
    from engine.likeness import likeness_report
    from engine.portrait import render_portraits

    images, recipes = [], []
    for index, config in enumerate(configs):
        made = render_portraits(
            cache=cache,
            spec=spec,
            identity_lora=lora,
            trigger_phrase=trigger,
            config=config,
            stages=stages[index] if stages else None,
        )
        for item in made:
            if item.image is None:
                raise SystemExit(f"a portrait failed: {item.error}")
            images.append(item.image)
            recipes.append(item.recipe)
    return Rendered(images, recipes, likeness_report(embeddings(images), heldout, training))


def checkpoint_lora(work: Path, step: int, family: str, out: Path) -> Path:
    """The UNet LoRA of training checkpoint ``step`` (peft state dicts, ``unet.``-prefixed) written as a standard
    diffusers LoRA file under ``out``, as training's own final file is written (alpha = rank: no metadata needed)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors.torch import load_file

    state = load_file(str(work / "checkpoints" / f"step-{step}" / "lora.safetensors"))
    unet = {key.removeprefix("unet."): value for key, value in state.items() if key.startswith("unet.")}
    if len(unet) != len(state):
        raise ValueError("this checkpoint holds text-encoder LoRA weights too: not converted here")
    pipeline = StableDiffusionPipeline if family == "sd15" else StableDiffusionXLPipeline
    pipeline.save_lora_weights(str(out), unet_lora_layers=convert_state_dict_to_diffusers(unet))
    return out / "pytorch_lora_weights.safetensors"


def run(
    *,
    spec: Any,
    photo_paths: list[Path],
    work: Path,
    heldout: int = 2,
    steps: int = 30,
    prompts: int = 3,
    seeds: int = 2,
    render_steps: int = 10,
    device: str | None = None,
    render_last: bool | None = None,
    face_pass: bool = True,
    batch: int | None = None,
) -> Outcome:
    """Split, train, render, score, more like me, best vs last (the module docstring's steps 1-5). The last
    checkpoint renders the template set when it is not the best one (``render_last=None``), always (True) or
    never (False). Training's validation renders use ``render_steps`` too."""
    from engine.rendering import PipelineCache, RenderConfig, config_from_recipe, more_like_me
    from engine.training import TrainConfig, train_identity_lora

    started = time.perf_counter()
    train_paths, heldout_paths = split_by_original(photo_paths, heldout)
    train_images, heldout_images = load(train_paths), load(heldout_paths)
    training_embeddings, heldout_embeddings = embeddings(train_images), embeddings(heldout_images)

    # `steps` count batch-1 steps (images seen): with a batch the run takes ceil(steps / batch) steps of it, at the
    # learning rate scaled for it (engine.training.training_schedule), checkpointed at the same images
    config = TrainConfig(
        steps=math.ceil(steps / batch) if batch else steps,
        batch_size=batch,
        checkpoint_every=max(1, steps // 2) if steps < 200 else 100,
        validation_steps=render_steps,
    )
    trained_at = time.perf_counter()
    result = train_identity_lora(spec=spec, images=train_images, work_dir=work / "double", config=config, device=device)
    train_seconds = time.perf_counter() - trained_at
    trigger = config.trigger_phrase()

    cache = PipelineCache(device=device)
    configs = [
        RenderConfig(prompt=prompt, negative_prompt=NEGATIVE, steps=render_steps, seeds=list(range(seeds)))
        for prompt in PROMPTS[:prompts]
    ]
    from engine.portrait import FacePass, Stages, stages_from_recipe

    stages = [Stages(face_pass=FacePass() if face_pass else None) for _ in configs]
    base = render_set(cache, spec, result.lora_path, trigger, configs, heldout_embeddings, training_embeddings, stages)
    raised = [more_like_me(recipe) for recipe in base.recipes]
    more_configs = [config_from_recipe(recipe) for recipe in raised]
    more_stages = [stages_from_recipe(recipe) for recipe in raised]
    more = render_set(
        cache, spec, result.lora_path, trigger, more_configs, heldout_embeddings, training_embeddings, more_stages
    )

    last_step = max(result.scores) if result.scores else result.steps
    notes: list[str] = []
    last = None
    if render_last or (render_last is None and last_step != result.best_step):
        try:
            folder = work / "last-lora"
            folder.mkdir(parents=True, exist_ok=True)
            lora = checkpoint_lora(work / "double", last_step, spec.family, folder)
            last = render_set(cache, spec, lora, trigger, configs, heldout_embeddings, training_embeddings, stages)
        except (FileNotFoundError, ValueError) as exc:
            notes.append(f"last checkpoint not rendered: {exc}")
    return Outcome(
        model=f"{spec.display_name if not spec.is_demo else spec.name} ({spec.family})",
        is_demo=spec.is_demo,
        device=str(cache.device),
        photos=len(photo_paths),
        originals=len({original_of(p) for p in photo_paths}),
        training_photos=len(train_paths),
        heldout_photos=len(heldout_paths),
        heldout_originals=heldout,
        steps=result.steps,
        train_seconds=train_seconds,
        best_step=result.best_step,
        last_step=last_step,
        checkpoint_scores=dict(result.scores),
        base=base,
        more=more,
        last=last,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------- figures


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def rise(before: Any, after: Any) -> tuple[int, int, float | None, float | None]:
    """(portraits whose likeness rose, portraits with a likeness in both, median before, median after of those)."""
    pairs = [
        (b.likeness, a.likeness)
        for b, a in zip(before.portraits, after.portraits, strict=True)
        if b.likeness is not None and a.likeness is not None
    ]
    if not pairs:
        return 0, 0, None, None
    return (
        sum(1 for b, a in pairs if a > b),
        len(pairs),
        statistics.median(b for b, _ in pairs),
        statistics.median(a for _, a in pairs),
    )


def summary_line(outcome: Outcome) -> str:
    """The one line the benchmark prints (n/a wherever no face was found to measure)."""
    report = outcome.base.report
    summary = report.summary
    noise = " (tiny model: noise)" if outcome.is_demo else ""
    share = summary.share_above_line
    portraits = (
        f"{summary.count} portraits, {report.faces} faces{noise}, held-out centroid from {report.heldout_photos} "
        f"photos ({outcome.heldout_originals} originals, none trained on), median likeness {_fmt(summary.median)}, "
        f"picks above line {'n/a' if share is None else f'{summary.above_line}/{summary.scored} ({share:.0%})'}, "
        f"copies {report.copies}"
    )
    risen, both, before, after = rise(report, outcome.more.report)
    more = (
        f"more-like-me: likeness rose for {risen}/{both}, median {_fmt(before)} -> {_fmt(after)}"
        if both
        else f"more-like-me n/a, {outcome.more.report.faces} faces{noise}"
    )
    scores = outcome.checkpoint_scores
    if outcome.best_step == outcome.last_step and outcome.last is None:
        held = "the best is the last checkpoint"
    elif outcome.last is not None and outcome.last.report.summary.scored and summary.scored:
        held = (
            f"held-out median best {_fmt(summary.median)} vs last {_fmt(outcome.last.report.summary.median)}, "
            f"copies {report.copies} vs {outcome.last.report.copies}"
        )
    else:
        held = "held-out n/a" + (f", {outcome.last.report.faces} faces{noise}" if outcome.last is not None else "")
    validation = ", ".join(f"step {step}: {score:.0f}" for step, score in sorted(scores.items())) or "not scored"
    best = (
        f"best-vs-last: best step {outcome.best_step}, last step {outcome.last_step}; validation likeness "
        f"{validation}; {held}"
    )
    return (
        f"likeness: {outcome.model}, {outcome.device}, {outcome.photos} photos ({outcome.originals} originals: "
        f"{outcome.training_photos} trained on, {outcome.heldout_photos} held out), {outcome.steps} steps in "
        f"{outcome.train_seconds:.1f} s | {portraits} | {more} | {best} | {outcome.seconds:.1f} s"
    )


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=None, help="a folder of the client's photos")
    parser.add_argument("--heldout", type=int, default=2, help="original photos held out (default 2)")
    parser.add_argument("--model", type=Path, default=None, help="a diffusers folder (default: the tiny model)")
    parser.add_argument("--family", choices=["sd15", "sdxl"], default="sd15")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 30 tiny, 800 real)")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help=f"templates, at most {len(PROMPTS)}")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per template")
    parser.add_argument("--render-steps", type=int, default=None, help="denoising steps (default 10 tiny, 30 real)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy shared CPU)")
    parser.add_argument(
        "--batch", type=int, default=None, help="training batch (default: the device's; 1 is the old schedule)"
    )
    parser.add_argument(
        "--face-pass", action=argparse.BooleanOptionalAction, default=True, help="the face pass stage (default on)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from engine.checkpoints import BaseModelSpec, build_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-likeness-") as tmp:
        work = Path(tmp)
        if args.model is None:
            spec = build_tiny_model(work / "models", args.family)
        else:
            spec = BaseModelSpec(name=args.model.name, family=args.family, source=str(args.model))
        real = args.model is not None
        outcome = run(
            spec=spec,
            photo_paths=client_photos(args.photos, work),
            work=work,
            heldout=args.heldout,
            steps=args.steps or (800 if real else 30),
            prompts=max(1, min(args.prompts, len(PROMPTS))),
            seeds=max(1, args.seeds),
            render_steps=args.render_steps or (30 if real else 10),
            device=args.device,
            face_pass=args.face_pass,
            batch=args.batch,
        )
        for label, rendered in (("base", outcome.base), ("more like me", outcome.more), ("last", outcome.last)):
            if rendered is None:
                continue
            for row, recipe in zip(rendered.report.portraits, rendered.recipes, strict=True):
                print(
                    f"{label:>12} #{row.index} seed {recipe['seed']} identity {recipe['identity_weight']}: "
                    f"face {row.face}, held-out distance {_fmt(row.heldout_distance, '.3f')}, likeness "
                    f"{_fmt(row.likeness)}, nearest training {_fmt(row.nearest_training_distance, '.3f')}, "
                    f"copy {row.copy}"
                )
        for note in outcome.notes:
            print(note)
        print(summary_line(outcome))


if __name__ == "__main__":
    main()
