"""Prompts are never cut: CLIP token counts (pure Python, checked against transformers' tokenizer on the same
merges), the bound, and the engine's whole-prompt encoding on the tiny SD 1.5 and SDXL models (real diffusers on
the CPU): the tail of a long prompt changes the embeddings and the image, a short prompt gives exactly the
pipeline's own embeddings, and recipes reproduce pixel for pixel, old (cut) ones included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import prompts

pytest.importorskip("diffusers")

from engine import rendering  # noqa: E402
from engine.checkpoints import build_tiny_model  # noqa: E402
from engine.rendering import PipelineCache, RenderConfig, config_from_recipe, render  # noqa: E402

TRIGGER = "ohwx person"
# the tiny models' tokenizer spells every character as one token: 200 characters are 200 tokens
HEAD = "portrait of {subject}, " + "soft window light, " * 5
TAIL_A = "red velvet backdrop, " * 6
TAIL_B = "blue painted wall, " * 6


# --- counting -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_clip_tokenizer() -> Any:
    """transformers' CLIPTokenizer on the same vocabulary (CLIP's: bytes, bytes as word ends, merges, markers)."""
    from transformers import CLIPTokenizer

    ranks = prompts.merges()
    symbols = list(prompts._BYTE_SYMBOLS.values())
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    for first, second in ranks:
        vocab.setdefault(first + second, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    assert len(vocab) == 49408  # CLIP's vocabulary size
    return CLIPTokenizer(vocab=vocab, merges=list(ranks))


TEXTS = [
    "Hello, World! it's f/2.8 at 85mm, 1950s",
    "Ünïcödé café naïve — “quotes” 日本語 ½ x² ...'s",
    "tabs\tand\n\nnew lines   and   spaces",
    "don't we'll ''s O'Neil",
    "(masterpiece:1.2), [cinematic], word++ gold-woven shadow-side",
    "",
]


def test_counts_are_clip_counts(hf_clip_tokenizer: Any) -> None:
    from templates_app.starters import STARTERS

    texts = TEXTS + [s.prompt.replace("{subject}", TRIGGER) for s in STARTERS] + [s.negative_prompt for s in STARTERS]
    for text in texts:
        ids = hf_clip_tokenizer(text, add_special_tokens=False).input_ids
        assert prompts.tokenize(text) == hf_clip_tokenizer.convert_ids_to_tokens(ids), text
        assert prompts.count_tokens(text) == len(ids)
    assert prompts.tokenize("ohwx person") == ["ohwx</w>", "person</w>"]  # the trigger is one token
    assert prompts.count_tokens("85mm lens, f/2.8") == len(["8", "5", "mm", "lens", ",", "f", "/", "2", ".", "8"])


def test_template_prompts_are_counted_as_rendered() -> None:
    assert prompts.prompt_tokens("portrait of {subject}") == prompts.count_tokens("portrait of ohwx person") == 4
    # without the placeholder the engine prepends the trigger phrase
    assert prompts.prompt_tokens("studio portrait") == prompts.count_tokens("ohwx person, studio portrait")
    assert prompts.windows(0) == 1 and prompts.windows(75) == 1 and prompts.windows(76) == 2


def test_the_bound_and_its_message() -> None:
    fits = "{subject} " + "light " * (prompts.MAX_PROMPT_TOKENS - 2)
    assert prompts.prompt_tokens(fits) == 225 and prompts.length_problem(fits) is None
    long = fits + "light " * 87
    assert prompts.length_problem(long) == "This prompt is 312 tokens long; the most is 225."
    negative = "blurry, " * 120
    message = prompts.length_problem(negative, negative=True)
    assert message == "This negative prompt is 240 tokens long; the most is 225."
    assert prompts.length_problem("blurry", negative=True) is None


def test_counting_needs_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from engine import prompts; prompts.count_tokens('portrait of a person');"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# --- encoding -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("prompts")
    return {family: build_tiny_model(root / "models", family) for family in ("sd15", "sdxl")}


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu")


def encode(cache: PipelineCache, spec: Any, prompt: str, negative: str = "") -> rendering.PromptEmbeddings:
    import torch

    with torch.inference_mode():
        return rendering.encode_prompts(cache.get(spec), spec.family, prompt, negative, cache.device)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_the_tail_of_a_long_prompt_counts(cache: PipelineCache, models: dict[str, Any], family: str) -> None:
    import torch

    spec = models[family]
    a = encode(cache, spec, HEAD + TAIL_A)
    b = encode(cache, spec, HEAD + TAIL_B)
    assert a.prompt_tokens > 2 * 77 and a.windows == 3
    embeds_a, embeds_b = a.kwargs["prompt_embeds"], b.kwargs["prompt_embeds"]
    assert embeds_a.shape[1] == 3 * 77
    # the prompts differ only after token 77: the first window is the same, the rest is not
    assert torch.equal(embeds_a[:, :77], embeds_b[:, :77])
    assert not torch.allclose(embeds_a[:, 77:], embeds_b[:, 77:])
    # the negative prompt is padded to as many windows as the prompt
    assert a.kwargs["negative_prompt_embeds"].shape == embeds_a.shape
    if family == "sdxl":
        assert a.kwargs["pooled_prompt_embeds"].shape == (1, 32)
        # an empty negative prompt is zeros, as SDXL's pipeline makes it (force_zeros_for_empty_prompt)
        assert not a.kwargs["negative_prompt_embeds"].any() and not a.kwargs["negative_pooled_prompt_embeds"].any()


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_long_negative_prompt_is_encoded_whole_too(cache: PipelineCache, models: dict[str, Any], family: str) -> None:
    import torch

    spec = models[family]
    a = encode(cache, spec, "portrait of ohwx person", HEAD + TAIL_A)
    b = encode(cache, spec, "portrait of ohwx person", HEAD + TAIL_B)
    assert a.kwargs["prompt_embeds"].shape[1] == a.kwargs["negative_prompt_embeds"].shape[1] == 3 * 77
    assert not torch.allclose(a.kwargs["negative_prompt_embeds"][:, 77:], b.kwargs["negative_prompt_embeds"][:, 77:])


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_short_prompt_gives_the_pipelines_own_embeddings(
    cache: PipelineCache, models: dict[str, Any], family: str
) -> None:
    import torch

    spec = models[family]
    pipe = cache.get(spec)
    prompt, negative = "portrait of ohwx person, 85mm", "blurry, cartoon"
    ours = encode(cache, spec, prompt, negative).kwargs
    with torch.inference_mode():
        if family == "sd15":
            theirs = pipe.encode_prompt(prompt, "cpu", 1, True, negative)
            expected = {"prompt_embeds": theirs[0], "negative_prompt_embeds": theirs[1]}
        else:
            theirs = pipe.encode_prompt(prompt, device="cpu", negative_prompt=negative)
            names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
            expected = dict(zip(names, theirs, strict=True))
    assert set(ours) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(ours[name], tensor), name


def cfg(prompt: str, **kwargs: Any) -> RenderConfig:
    return RenderConfig(prompt=prompt, steps=2, seeds=[3], width=64, height=64, **kwargs)


def image(items: list[rendering.RenderedImage]) -> np.ndarray:
    return np.asarray(items[0].image, dtype=np.int16)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_the_tail_changes_the_image_and_the_recipe_reproduces_it(
    cache: PipelineCache, models: dict[str, Any], family: str
) -> None:
    spec = models[family]

    def go(config: RenderConfig) -> list[rendering.RenderedImage]:
        return render(cache=cache, spec=spec, identity_lora=None, trigger_phrase=TRIGGER, config=config)

    a = go(cfg(HEAD + TAIL_A, negative_prompt="blurry"))
    b = go(cfg(HEAD + TAIL_B, negative_prompt="blurry"))
    assert np.abs(image(a) - image(b)).max() > 0  # the pipeline alone would render both the same
    recipe = json.loads(json.dumps(a[0].recipe))
    assert recipe["prompt_encoding"] == "whole" and recipe["prompt_tokens"] > 2 * 77
    assert recipe["negative_prompt_tokens"] == len("blurry")
    again = go(config_from_recipe(recipe))
    assert np.array_equal(image(again), image(a))


def test_short_prompts_render_as_before_and_old_recipes_reproduce(
    cache: PipelineCache, models: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    spec = models["sd15"]

    def go(config: RenderConfig) -> list[rendering.RenderedImage]:
        return render(cache=cache, spec=spec, identity_lora=None, trigger_phrase=TRIGGER, config=config)

    # within one window, the whole encoding and the pipeline's own give the same pixels
    short = "portrait of {subject}"
    whole, legacy = go(cfg(short)), go(cfg(short, prompt_encoding="truncated"))
    assert np.array_equal(image(whole), image(legacy))

    # a recipe made before prompts were encoded whole (no prompt_encoding) was cut: it is reproduced cut
    old = go(cfg(HEAD + TAIL_A, prompt_encoding="truncated"))
    recipe = json.loads(json.dumps(old[0].recipe))
    del recipe["prompt_encoding"], recipe["prompt_tokens"], recipe["negative_prompt_tokens"]
    config = config_from_recipe(recipe)
    assert config.prompt_encoding == "truncated"
    with caplog.at_level("WARNING", logger="engine.rendering"):
        again = go(config)
    assert np.array_equal(image(again), image(old))
    assert "encoded whole" in caplog.text
    assert not np.array_equal(image(go(cfg(HEAD + TAIL_A))), image(old))  # encoded whole, the tail counts

    with pytest.raises(ValueError, match="prompt encoding"):
        go(cfg(short, prompt_encoding="compel"))
