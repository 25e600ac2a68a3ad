"""The base-model registry, from settings: which models exist, which studios may use, and the default.

- `ENGINE_BASE_MODELS`: a JSON list of entries {name, family ("sd15"/"sdxl"), source (local diffusers folder or
  hub id), resolution?, licence, commercial_use, label} (engine.checkpoints.spec_from_dict).
- The tiny demo model "tiny-sd15" is always there: built offline on first use under `ENGINE_MODELS_DIR` by
  engine.checkpoints.build_tiny_model. Its images are noise; the UI says "demo model" wherever they appear.
- `ENGINE_ENABLED_MODELS`: the names studios may choose (empty: all). `ENGINE_DEFAULT_MODEL`: preselected.

Settings are read at each call, never at import. Nothing here imports torch: building the tiny model happens in
:func:`ensure_available`, which only workers and the `engine` command call.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from engine.checkpoints import TINY_SD15, BaseModelSpec, build_tiny_model, spec_from_dict, tiny_spec


class UnknownBaseModel(LookupError):
    """A model name that is not in the registry, or not enabled for studios. The message is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def models_dir() -> Path:
    return Path(settings.ENGINE_MODELS_DIR)


def _configured() -> list[BaseModelSpec]:
    entries = getattr(settings, "ENGINE_BASE_MODELS", None) or []
    if not isinstance(entries, list):
        raise ImproperlyConfigured("ENGINE_BASE_MODELS must be a JSON list of base-model entries.")
    specs = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"ENGINE_BASE_MODELS: each entry is a JSON object, not {entry!r}.")
        try:
            specs.append(spec_from_dict(entry))
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"ENGINE_BASE_MODELS: {exc}") from exc
    return specs


def all_models() -> list[BaseModelSpec]:
    """Every model of the registry: the tiny demo model first, then the configured ones (a configured entry
    with the demo model's name replaces it)."""
    configured = _configured()
    names = [spec.name for spec in configured]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"ENGINE_BASE_MODELS names {', '.join(duplicates)} more than once.")
    specs = [] if TINY_SD15 in names else [tiny_spec(models_dir(), "sd15")]
    return specs + configured


def enabled_names() -> list[str]:
    return [n.strip() for n in (getattr(settings, "ENGINE_ENABLED_MODELS", None) or []) if n and n.strip()]


def enabled_models() -> list[BaseModelSpec]:
    """The models studios may use, in registry order (every model when ENGINE_ENABLED_MODELS is empty)."""
    allowed = enabled_names()
    specs = all_models()
    if not allowed:
        return specs
    return [spec for spec in specs if spec.name in allowed]


def get_model(name: str, *, enabled_only: bool = True) -> BaseModelSpec:
    """The spec named `name`; UnknownBaseModel when there is none, or (with `enabled_only`) when the operator
    has not enabled it for studios."""
    for spec in all_models():
        if spec.name == name:
            if enabled_only and spec.name not in {s.name for s in enabled_models()}:
                raise UnknownBaseModel(f"The base model {name!r} is not available to studios on this platform.")
            return spec
    raise UnknownBaseModel(f"There is no base model called {name!r}.")


def default_model() -> BaseModelSpec:
    """ENGINE_DEFAULT_MODEL when enabled, else the first enabled model."""
    try:
        return get_model(settings.ENGINE_DEFAULT_MODEL)
    except UnknownBaseModel:
        enabled = enabled_models()
        if not enabled:
            raise UnknownBaseModel("No base model is enabled for studios (ENGINE_ENABLED_MODELS).") from None
        return enabled[0]


def train_steps(spec: BaseModelSpec) -> int | None:
    """Training steps of a double on `spec` when the double names none: ENGINE_TRAIN_STEPS when set, else the
    demo model's own (ENGINE_DEMO_TRAIN_STEPS: its images are noise, so a CPU finishes it in a minute or two),
    else None (the engine's default, min(200 x photos, 800))."""
    if settings.ENGINE_TRAIN_STEPS:
        return int(settings.ENGINE_TRAIN_STEPS)
    if spec.is_demo:
        return int(settings.ENGINE_DEMO_TRAIN_STEPS)
    return None


def render_steps(spec: BaseModelSpec, steps: int) -> int:
    """The denoising steps a render on `spec` really takes: a template's own, except on the demo model, which
    renders at most ENGINE_DEMO_RENDER_STEPS (noise takes no more; a CPU renders a run in seconds). The recipe
    records the steps taken, so "more like me" and re-rolls reproduce them."""
    if spec.is_demo:
        return max(1, min(int(steps), int(settings.ENGINE_DEMO_RENDER_STEPS)))
    return int(steps)


def ensure_available(spec: BaseModelSpec) -> BaseModelSpec:
    """Make sure the weights can be loaded: the tiny demo model is built (once) under ENGINE_MODELS_DIR.
    Imports torch: call it in workers and commands only."""
    if spec.is_demo and spec.name == TINY_SD15:
        return build_tiny_model(models_dir(), "sd15")
    return spec


@register(Tags.compatibility)
def check_base_models(app_configs: object = None, **kwargs: object) -> list:
    """ENGINE_BASE_MODELS must parse; enabled and default names must exist."""
    try:
        specs = all_models()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="generation.E020")]
    names = {spec.name for spec in specs}
    problems = [
        Error(
            f"ENGINE_ENABLED_MODELS names {name!r}, which is not in the registry.",
            hint=f"Known models: {', '.join(sorted(names))}.",
            id="generation.E021",
        )
        for name in enabled_names()
        if name not in names
    ]
    if settings.ENGINE_DEFAULT_MODEL not in {spec.name for spec in enabled_models()}:
        problems.append(
            Error(
                f"ENGINE_DEFAULT_MODEL {settings.ENGINE_DEFAULT_MODEL!r} is not an enabled base model.",
                id="generation.E022",
            )
        )
    return problems
