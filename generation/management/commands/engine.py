"""`manage.py engine`: run the portrait engine from the shell, for operators and for debugging. No studio, no
database rows (except `rotate-keys`): plain engine on a folder of photos.

    manage.py engine models                          the base-model registry with licences and commercial use
    manage.py engine build-tiny [--family sdxl]      build the tiny demo model under ENGINE_MODELS_DIR
                    [--instant-adapter]              (and the demo's tiny IP-Adapter for instant portraits)
    manage.py engine train --photos DIR --out DIR [--model NAME] [--steps N] [--class-word W]
                           [--prompt "portrait of {subject}" --images N]
                                                     train an identity LoRA (resumes from DIR/work when run
                                                     again after an interruption), then optionally render
    manage.py engine rotate-keys                     re-encrypt every double with the first key of
                                                     DOUBLE_ENCRYPTION_KEYS (after adding a new key first)

`train` writes OUT/lora.safetensors (standard diffusers LoRA, NOT encrypted: it is the operator's own folder),
OUT/centroid.npy, OUT/metrics.json, and with --prompt OUT/portrait-<rank>-seed<seed>.png + OUT/portraits.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine import masks, portrait, rendering
from engine.checkpoints import build_tiny_ip_adapter, build_tiny_model
from engine.images import PhotoRejected, encode_clean, load_photo
from templates_app import base_models
from tenants.context import tenant_context
from tenants.models import Studio

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


class Command(BaseCommand):
    help = "Run the portrait engine from the shell: list models, build the tiny model, train and render."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="{models,build-tiny,train,render,rotate-keys}"
        )
        sub.add_parser("models", help="List the base-model registry (licence, commercial use, enabled).")
        tiny = sub.add_parser("build-tiny", help="Build the tiny demo model under ENGINE_MODELS_DIR.")
        tiny.add_argument("--family", choices=["sd15", "sdxl"], default="sd15")
        tiny.add_argument("--root", help="Folder to build under (default ENGINE_MODELS_DIR).")
        tiny.add_argument(
            "--instant-adapter",
            action="store_true",
            help='Also build the tiny IP-Adapter of instant portraits (ENGINE_INSTANT_ADAPTER="demo") beside it.',
        )
        train = sub.add_parser("train", help="Train an identity LoRA on a folder of photos, then optionally render.")
        train.add_argument("--photos", required=True, help="Folder of photos of one person (JPEG, PNG, WebP, HEIC).")
        train.add_argument("--out", required=True, help="Output folder (created).")
        train.add_argument("--model", default=None, help="Base model name (default ENGINE_DEFAULT_MODEL).")
        train.add_argument("--steps", type=int, default=None, help="Training steps (default min(200 x photos, 800)).")
        train.add_argument("--class-word", default="person", choices=["woman", "man", "person"])
        train.add_argument("--trigger", default=None, help="Trigger token (default: the platform's).")
        train.add_argument("--rank", type=int, default=None, help="LoRA rank (default: the engine's).")
        train.add_argument("--device", choices=["cpu", "cuda"], default=None, help="Force a device.")
        train.add_argument("--keep-work", action="store_true", help="Keep OUT/work (checkpoints) afterwards.")
        train.add_argument("--prompt", default=None, help='Render after training, e.g. "portrait of {subject}".')
        train.add_argument("--negative-prompt", default="")
        train.add_argument("--images", type=int, default=4, help="Images to render (one seed each).")
        train.add_argument("--seed", type=int, default=0, help="First seed.")
        train.add_argument("--render-steps", type=int, default=30)
        train.add_argument("--identity-weight", type=float, default=1.0)
        train.add_argument("--scheduler", default="dpmpp_2m_karras")
        train.add_argument("--quiet", action="store_true", help="No progress bar.")
        _stage_arguments(train)
        render = sub.add_parser("render", help="Render portraits of a double that `engine train --out` wrote.")
        render.add_argument(
            "--double", required=True, help="The folder `engine train --out` wrote (lora.safetensors, metrics.json)."
        )
        render.add_argument("--out", required=True, help="Output folder (created).")
        render.add_argument("--prompt", required=True, help='e.g. "studio portrait of {subject}".')
        render.add_argument("--negative-prompt", default="")
        render.add_argument("--images", type=int, default=4, help="Images to render (one seed each).")
        render.add_argument("--seed", type=int, default=0, help="First seed.")
        render.add_argument("--steps", type=int, default=30, dest="render_steps", help="Denoising steps.")
        render.add_argument("--identity-weight", type=float, default=1.0)
        render.add_argument("--scheduler", default="dpmpp_2m_karras")
        render.add_argument(
            "--model", default=None, help="Base model name (default: the one the double was trained on)."
        )
        render.add_argument("--device", choices=["cpu", "cuda"], default=None, help="Force a device.")
        render.add_argument("--quiet", action="store_true", help="No progress bar.")
        _stage_arguments(render)
        sub.add_parser("rotate-keys", help="Re-encrypt every double with the first DOUBLE_ENCRYPTION_KEYS key.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "models":
            self.list_models()
        elif action == "build-tiny":
            self.build_tiny(options)
        elif action == "train":
            self.train(options)
        elif action == "render":
            self.render_double(options)
        elif action == "rotate-keys":
            self.rotate_keys()

    # --- models -------------------------------------------------------------------------------------------

    def list_models(self) -> None:

        enabled = {spec.name for spec in base_models.enabled_models()}
        default = settings.ENGINE_DEFAULT_MODEL
        for spec in base_models.all_models():
            flags = []
            if spec.name in enabled:
                flags.append("enabled")
            if spec.name == default:
                flags.append("default")
            if spec.is_demo:
                flags.append("demo: images are noise")
            commercial = "commercial use: yes" if spec.commercial_use else "commercial use: NO"
            self.stdout.write(
                f"{spec.name}  [{spec.family}, {spec.native_resolution} px]  {', '.join(flags) or 'disabled'}\n"
                f"    {spec.display_name}\n    source: {spec.source}\n"
                f"    licence: {spec.licence or 'not stated'} · {commercial}"
            )

    def build_tiny(self, options: dict[str, Any]) -> None:

        root = Path(options.get("root") or base_models.models_dir())
        spec = build_tiny_model(root, options["family"])
        self.stdout.write(self.style.SUCCESS(f"Tiny {options['family']} model ready at {spec.source}"))
        if options.get("instant_adapter"):
            if options["family"] != "sd15":
                raise CommandError("The demo's instant-portrait adapter is built for the tiny sd15 model only.")
            from generation import instant

            folder = root / instant.DEMO_FOLDER
            if not (folder / instant.DEMO_WEIGHT_NAME).exists():
                build_tiny_ip_adapter(spec, folder)
            self.stdout.write(self.style.SUCCESS(f"Tiny instant-portrait adapter ready at {folder}"))

    # --- train (and render) -------------------------------------------------------------------------------

    def _load_photos(self, folder: Path) -> list[Any]:

        if not folder.is_dir():
            raise CommandError(f"--photos {folder} is not a folder.")
        images = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
                continue
            try:
                images.append(load_photo(path.read_bytes()).image)
            except PhotoRejected as exc:
                self.stderr.write(f"Skipped {path.name}: {exc}")
        if not images:
            raise CommandError(f"No usable photo in {folder} (JPEG, PNG, WebP or HEIC).")
        return images

    def _spec(self, name: str | None) -> Any:

        try:
            spec = base_models.get_model(name, enabled_only=False) if name else base_models.default_model()
        except base_models.UnknownBaseModel as exc:
            raise CommandError(exc.message) from None
        return base_models.ensure_available(spec)

    def train(self, options: dict[str, Any]) -> None:
        from generation import doubles

        images = self._load_photos(Path(options["photos"]))
        spec = self._spec(options["model"])
        from engine import training

        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        if spec.is_demo:
            self.stdout.write(self.style.WARNING(f"{spec.name} is the demo model: its images are noise."))
        kwargs: dict[str, Any] = {
            "trigger": options["trigger"] or doubles.DEFAULT_TRIGGER,
            "class_word": options["class_word"],
            "steps": options["steps"] or (settings.ENGINE_TRAIN_STEPS or None),
        }
        if options["rank"]:
            kwargs["rank"] = options["rank"]
        config = training.TrainConfig(**kwargs)
        bar = _Bar(quiet=options["quiet"], desc="Training")
        self.stdout.write(f"Training on {len(images)} photos with {spec.name} ({spec.family})…")
        try:
            result = training.train_identity_lora(
                spec=spec,
                images=images,
                work_dir=out / "work",
                config=config,
                progress=bar.train_progress,
                device=options["device"] or settings.ENGINE_DEVICE or None,
            )
        except training.TrainingFailed as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        lora = out / "lora.safetensors"
        shutil.copyfile(result.lora_path, lora)
        if result.centroid is not None:
            import numpy as np

            np.save(out / "centroid.npy", np.asarray(result.centroid, dtype=np.float32))
        metrics = {
            "base_model": spec.name,
            "trigger_phrase": config.trigger_phrase(),
            "photos": len(images),
            "steps": result.steps,
            "best_step": result.best_step,
            "scores": {str(k): float(v) for k, v in (result.scores or {}).items()},
            "seconds": round(float(result.seconds), 2),
            "resumed_from": result.resumed_from,
            "batch_size": result.batch_size,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        if not options["keep_work"]:
            shutil.rmtree(out / "work", ignore_errors=True)
        resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained {result.steps} steps in {result.seconds:.1f} s{resumed}; best checkpoint: step "
                f"{result.best_step}. LoRA: {lora}"
            )
        )
        if options["prompt"]:
            self.render(options, spec=spec, lora=lora, trigger_phrase=config.trigger_phrase(), centroid=result.centroid)

    def render_double(self, options: dict[str, Any]) -> None:
        """Render from a double's folder (what `engine train --out` wrote): no studio, no database."""
        import numpy as np

        folder = Path(options["double"])
        lora, metrics_file = folder / "lora.safetensors", folder / "metrics.json"
        if not lora.is_file() or not metrics_file.is_file():
            raise CommandError(
                f"{folder} holds no double: `engine train --out {folder}` writes lora.safetensors and metrics.json."
            )
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            trigger_phrase = str(metrics["trigger_phrase"])
        except (ValueError, KeyError, TypeError):
            raise CommandError(f"{metrics_file} is not the metrics.json `engine train` writes.") from None
        spec = self._spec(options["model"] or metrics.get("base_model"))
        centroid_file = folder / "centroid.npy"
        centroid = np.load(centroid_file) if centroid_file.is_file() else None
        Path(options["out"]).mkdir(parents=True, exist_ok=True)
        self.render(options, spec=spec, lora=lora, trigger_phrase=trigger_phrase, centroid=centroid)

    def render(self, options: dict[str, Any], *, spec: Any, lora: Path, trigger_phrase: str, centroid: Any) -> None:
        from engine import likeness
        from generation import doubles

        try:
            request = doubles.clean_render_config(
                {
                    "prompt": options["prompt"],
                    "negative_prompt": options["negative_prompt"],
                    "scheduler": options["scheduler"],
                    "steps": options["render_steps"],
                    "identity_weight": options["identity_weight"],
                    "seeds": list(range(options["seed"], options["seed"] + max(1, options["images"]))),
                }
            )
        except doubles.DoubleError as exc:
            raise CommandError(exc.message) from None
        out = Path(options["out"])
        config = rendering.RenderConfig(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            scheduler=request.scheduler,
            steps=request.steps,
            seeds=list(request.seeds),
            identity_weight=request.identity_weight,
            batch_size=min(len(request.seeds), 4),
        )
        stages = self._stages(options)
        cache = rendering.PipelineCache(
            device=options["device"] or settings.ENGINE_DEVICE or None,
            inpaint_unets=dict(settings.ENGINE_INPAINT_UNETS or {}) or None,
        )
        bar = _Bar(quiet=options["quiet"], desc="Rendering")
        try:
            made = portrait.render_portraits(
                cache=cache,
                spec=spec,
                identity_lora=lora,
                trigger_phrase=trigger_phrase,
                config=config,
                stages=stages,
                progress=bar.fraction_progress,
            )
        except ValueError as exc:
            raise CommandError(f"This render can't be made: {exc}.") from None
        finally:
            bar.close()
        kept = [item for item in made if item.image is not None]
        scores = [likeness.score_image(item.image, centroid) for item in kept]
        order = likeness.rank(scores)
        summary: list[dict[str, Any]] = []
        for position, index in enumerate(order, start=1):
            item, score = kept[index], scores[index]
            name = f"portrait-{position}-seed{item.seed}.png"
            (out / name).write_bytes(encode_clean(item.image, format="PNG"))
            # `recipe` is the engine's, naming every stage with its settings; `faces` are the boxes (output
            # pixels) of the faces the face pass or the template photo's inpainting regenerated.
            summary.append(
                {
                    "file": name,
                    "rank": position,
                    "seed": item.seed,
                    "size": list(item.image.size),
                    "likeness": score.likeness,
                    "flags": list(score.flags),
                    "recipe": item.recipe,
                    "faces": [list(box) for box in item.faces],
                }
            )
            shown = "—" if score.likeness is None else f"{score.likeness:.0f}"
            flags = f"  [{', '.join(score.flags)}]" if score.flags else ""
            size = "x".join(str(side) for side in item.image.size)
            self.stdout.write(
                f"  #{position} seed {item.seed}: {size}, {len(item.faces)} face(s) regenerated, likeness "
                f"{shown}/100{flags} → {name}"
            )
        for item in made:
            if item.image is not None:
                continue
            if item.withheld is not None:
                reason = ", ".join(f"{label} {score:.2f}" for label, score in item.withheld) or "explicit"
                message = f"withheld by the output check ({reason})"
            else:
                message = item.error or "failed"
            summary.append({"file": None, "seed": item.seed, "error": message, "recipe": item.recipe, "faces": []})
            self.stderr.write(f"  seed {item.seed}: {message}")
        (out / "portraits.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"Rendered {len(kept)} of {len(made)} image(s) into {out}"))
        if not kept:
            raise CommandError("No portrait could be made: see the messages above.")

    def _stages(self, options: dict[str, Any]) -> Any:
        from PIL import Image

        from engine import safety

        mask = masks.MaskSettings(margin=options["mask_margin"], feather=options["mask_feather"])
        long_side = options["long_side"]
        if long_side is not None and not 64 <= long_side <= 16384:
            raise CommandError("--long-side must be from 64 to 16384 pixels.")
        sr_model = options["sr_model"] if options["sr_model"] is not None else settings.ENGINE_UPSCALER_MODEL
        stages = portrait.Stages(
            face_pass=portrait.FacePass(
                identity_weight=options["face_identity_weight"], denoise=options["face_denoise"], mask=mask
            )
            if options["face_pass"]
            else None,
            upscale=portrait.Upscale(
                long_side=long_side, denoise=options["upscale_denoise"], sr_model=Path(sr_model) if sr_model else None
            )
            if long_side
            else None,
            check=safety.check_safety,
            check_name="nudenet 3.0.8",
        )
        if options["template_photo"]:
            try:
                with Image.open(options["template_photo"]) as photo:
                    photo.load()
                    image = photo.copy()
            except (OSError, ValueError) as exc:
                raise CommandError(f"--template-photo can't be read: {exc}") from None
            stages.template_photo = portrait.TemplatePhoto(image=image, mask=mask, strength=options["strength"])
        return stages

    # --- rotate-keys --------------------------------------------------------------------------------------

    def rotate_keys(self) -> None:
        from django.core.files.base import ContentFile
        from django.db import transaction

        from generation import crypto
        from generation.models import DigitalDouble

        done = 0
        for studio in Studio.objects.order_by("pk"):
            with tenant_context(studio):
                for double in DigitalDouble.objects.exclude(lora_file=""):
                    with transaction.atomic():
                        old = double.lora_file.name
                        with double.lora_file.storage.open(old, "rb") as handle:
                            token = crypto.rotate(handle.read())
                        double.lora_file.save("double.bin", ContentFile(token), save=False)
                        if double.centroid_encrypted:
                            double.centroid_encrypted = crypto.rotate(bytes(double.centroid_encrypted))
                        double.save(update_fields=["lora_file", "centroid_encrypted"])
                    double.lora_file.storage.delete(old)
                    done += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {done} digital double(s) with the first key."))


class _Bar:
    """A tqdm progress bar made when the first progress report arrives (the total is known then)."""

    def __init__(self, *, quiet: bool, desc: str) -> None:
        self.quiet = quiet
        self.desc = desc
        self.bar: Any = None

    def _ensure(self, total: int) -> Any:
        if self.bar is None and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="step", file=sys.stderr, dynamic_ncols=True)
        return self.bar

    def train_progress(self, p: Any) -> None:
        bar = self._ensure(int(p.total or 0))
        if bar is None:
            return
        bar.total = int(p.total or bar.total)
        bar.n = int(p.step)
        if p.loss is not None:
            bar.set_postfix(loss=f"{p.loss:.3f}", refresh=False)
        bar.refresh()

    def fraction_progress(self, fraction: float, message: str) -> None:
        bar = self._ensure(1000)
        if bar is None:
            return
        bar.n = round(fraction * 1000)
        bar.set_description_str(message.split(":")[0], refresh=False)
        bar.refresh()

    def count_progress(self, done: int, total: int) -> None:
        bar = self._ensure(total)
        if bar is None:
            return
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _stage_arguments(parser: CommandParser) -> None:
    """The portrait pipeline's stages (engine.portrait), for `render` and `train --prompt`."""
    parser.add_argument(
        "--template-photo", default=None, help="A real photo: its faces are replaced by the client's (inpainting)."
    )
    parser.add_argument("--strength", type=float, default=0.75, help="Template photo: how much of the face changes.")
    parser.add_argument("--long-side", type=int, default=None, help="Output long side in px (print size: 3000).")
    parser.add_argument(
        "--upscale-denoise", type=float, default=0.25, help="Tiled re-render when upscaling (0: enlarge only)."
    )
    parser.add_argument("--sr-model", default=None, help="Super-resolution model file (default ENGINE_UPSCALER_MODEL).")
    parser.add_argument(
        "--face-pass", action=argparse.BooleanOptionalAction, default=True, help="Re-render each face at full size."
    )
    parser.add_argument("--face-denoise", type=float, default=0.4)
    parser.add_argument("--face-identity-weight", type=float, default=1.0)
    parser.add_argument("--mask-margin", type=float, default=0.3, help="Face mask: grown by this share of the face.")
    parser.add_argument("--mask-feather", type=float, default=0.15, help="Face mask: soft edge, share of the face.")
