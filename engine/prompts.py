"""Prompt lengths: how many tokens CLIP reads from a prompt, and the bound the product keeps.

Plain Python (no torch, no transformers, no Django): the web process imports this to check prompts in the
template designer, the templates API and the test-render form, so it must not load a model.

Why tokens and not characters
    Stable Diffusion 1.5 and SDXL read a prompt through CLIP's text encoder, 77 positions at a time: a start
    marker, 75 tokens and an end marker. diffusers' pipelines cut everything past the first 75 tokens without a
    word. The engine doesn't: :func:`engine.rendering.encode_prompts` encodes a longer prompt in
    windows of 75 tokens and joins them (docs/engine.md, "Prompts"). Even so, attention to later windows is
    weaker and every window costs, so the product keeps a hard bound of :data:`MAX_PROMPT_TOKENS` (three
    windows) on prompts and negative prompts, counted here.

The count
    :func:`count_tokens` is CLIP's own byte-level BPE, in pure Python, with the merges of CLIP's vocabulary
    shipped beside this file (``clip_bpe/merges.txt.gz``, MIT, from OpenAI's CLIP). It is the tokenizer of every
    SD 1.5 checkpoint and of both SDXL text encoders (their vocabularies are the same; only the padding token
    differs), and it follows what ``transformers.CLIPTokenizer`` does to text (NFC, runs of whitespace as one
    space, lower case; the same split into words, single digits and punctuation runs), so the number shown to
    a photographer is the number of tokens a real model reads (``tests/engine/test_prompts.py`` compares it
    with transformers' tokenizer built on the same merges). The tiny demo model's tokenizer spells every
    character as one token; the count here is deliberately the real models' one, which is what a template is
    written for (the demo model simply encodes more windows).

    A template prompt is counted as rendered: ``{subject}`` becomes :data:`COUNTING_SUBJECT` ("ohwx person",
    the default trigger and the longest class word: 2 tokens). The markers are not counted.

Weighting syntax
    Prompts are plain text: "(", ")", "+", "-", ":" and numbers mean what they say, as in any prompt given to a
    diffusers pipeline. No weighting syntax (A1111's ``(word:1.3)``, compel's ``word++``) is interpreted.
"""

from __future__ import annotations

import gzip
import math
import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

CHUNK_TOKENS = 75
"""Tokens in one CLIP window (77 positions less the start and end markers)."""
MAX_PROMPT_TOKENS = 3 * CHUNK_TOKENS
"""The most tokens a prompt or negative prompt may have (225: three windows)."""
SUBJECT = "{subject}"
COUNTING_SUBJECT = "ohwx person"
"""What ``{subject}`` stands for when a template prompt is counted."""

MERGES_PATH = Path(__file__).with_name("clip_bpe") / "merges.txt.gz"
_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_WHITESPACE = re.compile(r"\s+")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


_BYTE_SYMBOLS = bytes_to_unicode()


@cache
def merges() -> dict[tuple[str, str], int]:
    """CLIP's BPE merges and their ranks (read once)."""
    lines = gzip.decompress(MERGES_PATH.read_bytes()).decode("utf-8").split("\n")
    pairs = [tuple(line.split()) for line in lines[1:] if line]
    return {(pair[0], pair[1]): rank for rank, pair in enumerate(pairs)}


def _kind(char: str) -> str:
    category = unicodedata.category(char)
    if char.isspace():
        return " "
    return category[0] if category[0] in "LN" else "P"


def words(text: str) -> list[str]:
    """The pieces CLIP's pre-tokenizer cuts `text` into: special markers, contractions ('s 't 're 've 'm 'll 'd),
    runs of letters, single digits and runs of other non-space characters, after NFC, whitespace folding and
    lower-casing (what ``transformers.CLIPTokenizer`` does)."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).lower()
    pieces: list[str] = []
    i, end = 0, len(text)
    while i < end:
        special = next((s for s in _SPECIALS if text.startswith(s, i)), None)
        if special:
            pieces.append(special)
            i += len(special)
            continue
        contraction = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
        if contraction:
            pieces.append(contraction)
            i += len(contraction)
            continue
        kind = _kind(text[i])
        if kind == " ":
            i += 1
            continue
        if kind == "N":
            pieces.append(text[i])
            i += 1
            continue
        j = i + 1
        while j < end and _kind(text[j]) == kind:
            j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


@lru_cache(maxsize=20_000)
def bpe(word: str) -> tuple[str, ...]:
    """CLIP's BPE tokens of one pre-tokenized piece (bytes as CLIP's printable symbols, ``</w>`` at its end)."""
    if word in _SPECIALS:
        return (word,)
    symbols = [_BYTE_SYMBOLS[b] for b in word.encode("utf-8")]
    symbols[-1] += "</w>"
    ranks = merges()
    while len(symbols) > 1:
        best = min(range(len(symbols) - 1), key=lambda k: ranks.get((symbols[k], symbols[k + 1]), math.inf))
        pair = (symbols[best], symbols[best + 1])
        if pair not in ranks:
            break
        merged: list[str] = []
        k = 0
        while k < len(symbols):
            if k < len(symbols) - 1 and (symbols[k], symbols[k + 1]) == pair:
                merged.append(symbols[k] + symbols[k + 1])
                k += 2
            else:
                merged.append(symbols[k])
                k += 1
        symbols = merged
    return tuple(symbols)


def tokenize(text: str) -> list[str]:
    """`text` as CLIP's BPE tokens, without the start and end markers."""
    return [token for word in words(text) for token in bpe(word)]


def count_tokens(text: str) -> int:
    """How many tokens CLIP reads from `text` (the start and end markers not counted)."""
    return sum(len(bpe(word)) for word in words(text))


def prompt_tokens(prompt: str) -> int:
    """The tokens of a template or render prompt as rendered: ``{subject}`` counted as :data:`COUNTING_SUBJECT`
    (and, as the engine does, prepended when the prompt has no placeholder)."""
    if SUBJECT in prompt:
        return count_tokens(prompt.replace(SUBJECT, COUNTING_SUBJECT))
    stripped = prompt.strip()
    return count_tokens(f"{COUNTING_SUBJECT}, {stripped}" if stripped else COUNTING_SUBJECT)


def windows(tokens: int) -> int:
    """How many 77-position CLIP windows `tokens` tokens take (at least one)."""
    return max(1, math.ceil(tokens / CHUNK_TOKENS))


def length_problem(text: str, *, negative: bool = False, limit: int = MAX_PROMPT_TOKENS) -> str | None:
    """A message for people when `text` (a prompt, or with `negative` a negative prompt) has more than `limit`
    tokens — "This prompt is 312 tokens long; the most is 225." — else None."""
    tokens = count_tokens(text) if negative else prompt_tokens(text)
    if tokens <= limit:
        return None
    what = "negative prompt" if negative else "prompt"
    return f"This {what} is {tokens} tokens long; the most is {limit}."
