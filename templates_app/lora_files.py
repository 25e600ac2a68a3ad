"""Checking an uploaded style LoRA before anything is stored. No torch, no Django models: plain Python on bytes.

A style LoRA is untrusted input that a GPU worker will later load, so it is checked here, in the web process,
from its bytes alone (never from its name), and refused with a message people can act on:

1. **safetensors only.** Pickle-based formats (``.ckpt``, ``.pt``, ``.pth``, ``.bin``: a pickle stream, or the
   zip container of ``torch.save``) can run arbitrary code when they are loaded, so they are refused by name
   and by content, and never opened.
2. **The container is whole and consistent.** A safetensors file is an 8-byte little-endian header length,
   a JSON header ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"?: {str: str}}``,
   then the tensor bytes. The header must be JSON (an object, no duplicate names), every dtype known, every
   shape a list of non-negative integers, every tensor's byte length ``prod(shape) * itemsize``, the tensors
   laid out one after another from offset 0 with no gap or overlap, and the file exactly as long as the header
   says. That is what the `safetensors` library itself requires, checked here without reading tensor data.
3. **LoRA keys only.** Diffusers/peft (``unet.….lora_A.weight`` / ``lora_B.weight``, ``….lora.down.weight`` /
   ``lora.up.weight``, ``text_encoder(_2).…``, ``.alpha``) and kohya (``lora_unet_…lora_down.weight`` /
   ``lora_up.weight`` / ``.alpha``, ``lora_te_``, ``lora_te1_``, ``lora_te2_``) names. A full checkpoint's key
   (``model.diffusion_model.…``, ``first_stage_model.…``, a bare UNet or text-encoder weight) means "this is a
   model, not a LoRA".
4. **Pairs are consistent.** Every down (A) matrix has its up (B) matrix and the other way round, the up
   matrix's inner dimension equals the down matrix's rank, and an alpha is a single number.
5. **Shapes fit the base model.** The cross-attention key/value projections (``attn2.to_k``/``attn2.to_v``,
   kohya ``attn2_to_k``/``attn2_to_v``) read the text encoder's hidden states: their down matrix's input width
   must be the base model's ``cross_attention_dim`` (read from ``<source>/unet/config.json`` when the model is a
   local folder; else 768 for SD 1.5, 2048 for SDXL). ``text_encoder_2``/``lora_te1_``/``lora_te2_`` keys
   mean SDXL. A LoRA for the other family gets "This style LoRA was made for SDXL; … is an SD 1.5 model".

Limits: the file is at most ``STYLE_LORA_MAX_BYTES`` (default 400 MB: SDXL LoRAs of rank 128 are ~350 MB) and
its header at most 32 MB (a rank-128 SDXL LoRA's header is well under 1 MB); both are read at call time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

DEFAULT_MAX_BYTES: Final = 400 * 1024 * 1024
MAX_HEADER_BYTES: Final = 32 * 1024 * 1024
CHUNK: Final = 1024 * 1024

FAMILY_LABELS: Final = {"sd15": "SD 1.5", "sdxl": "SDXL"}
# The cross-attention width of each family's real UNets (the text encoders' hidden size: CLIP-L 768 for SD 1.5,
# CLIP-L + OpenCLIP-bigG = 768 + 1280 for SDXL); SD 2.x uses 1024 (OpenCLIP-H), which no family here supports.
FAMILY_CROSS_ATTENTION: Final = {"sd15": 768, "sdxl": 2048}
OTHER_CROSS_ATTENTION: Final = {1024: "SD 2.x"}
# The tiny demo models (engine/checkpoints.py build_tiny_model), for when the web process has not built
# them: their unet/config.json says the same once they exist.
DEMO_CROSS_ATTENTION: Final = {"tiny-sd15": 32, "tiny-sdxl": 64}

DTYPE_SIZES: Final = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
FLOAT_DTYPES: Final = frozenset({"F16", "BF16", "F32", "F64", "F8_E5M2", "F8_E4M3"})

PICKLE_EXTENSIONS: Final = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
PICKLE_MESSAGE: Final = (
    "Only .safetensors files are accepted: pickle-based files (.ckpt, .pt, .bin) can run code when loaded. "
    "Convert the LoRA to .safetensors (most trainers can save it that way) and upload that."
)
NOT_LORA_CHECKPOINT: Final = (
    "This is a full model checkpoint, not a LoRA (it holds the model's own weights, e.g. {key}). Upload the "
    "LoRA file your trainer saved (usually a few to a few hundred MB)."
)

# Diffusers / peft names: <component>.<module path>.<suffix>.
_DIFFUSERS_PREFIXES: Final = ("unet.", "text_encoder.", "text_encoder_2.")
# Older diffusers attention-processor LoRAs name UNet modules without a prefix.
_BARE_UNET_PREFIXES: Final = ("down_blocks.", "mid_block.", "up_blocks.")
_KOHYA_PREFIXES: Final = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# (suffix, role) — role: "down" (A: rank x in), "up" (B: out x rank), "alpha", "extra" (DoRA magnitudes).
_DIFFUSERS_SUFFIXES: Final = (
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    ("_lora.down.weight", "down"),
    ("_lora.up.weight", "up"),
    (".lora_A.default.weight", "down"),
    (".lora_B.default.weight", "up"),
    (".lora_magnitude_vector", "extra"),
    (".alpha", "alpha"),
)
_KOHYA_SUFFIXES: Final = (
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".alpha", "alpha"),
    (".dora_scale", "extra"),
)
_LYCORIS_MARKERS: Final = (".hada_w", ".lokr_w", ".lokr_t", ".hada_t", ".oft_", ".diff", ".diff_b")
# Keys of full checkpoints: the original (LDM) layout and bare diffusers components.
_CHECKPOINT_PREFIXES: Final = (
    "model.diffusion_model.",
    "first_stage_model.",
    "cond_stage_model.",
    "conditioner.",
    "model_ema.",
    "text_model.",
    "vae.",
    "encoder.",
    "decoder.",
    "quant_conv.",
    "post_quant_conv.",
    "conv_in.",
    "conv_out.",
    "conv_norm_out.",
    "time_embedding.",
    "add_embedding.",
    *_BARE_UNET_PREFIXES,
)
_CROSS_ATTENTION_KV: Final = re.compile(r"attn2(?:\.|_)(?:processor(?:\.|_))?to_(?:k|v)(?:\.|_|$)")


class LoraRejected(Exception):
    """A style LoRA that can't be accepted. ``code`` is a short slug for programs, ``message`` is for people.

    Codes: ``empty``, ``too_large``, ``pickle``, ``not_safetensors``, ``truncated``, ``bad_header``,
    ``no_tensors``, ``checkpoint``, ``not_lora``, ``bad_pair``, ``wrong_family``, ``wrong_shape``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TargetModel:
    """What the LoRA must fit: the base model's name, family and cross-attention width."""

    name: str
    family: str
    cross_attention_dim: int
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class LoraInfo:
    """A checked style LoRA: its family, the largest rank, how many tensors, the file's sha256 and size."""

    family: str
    rank: int | None
    tensors: int
    sha256: str
    size: int
    cross_attention_dim: int | None
    components: tuple[str, ...] = field(default_factory=tuple)
    metadata: dict[str, str] = field(default_factory=dict)


def human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} KB"
    return f"{n} bytes"


def max_bytes() -> int:
    """settings.STYLE_LORA_MAX_BYTES, read at call time (default 400 MB)."""
    from django.conf import settings

    return int(getattr(settings, "STYLE_LORA_MAX_BYTES", DEFAULT_MAX_BYTES))


def too_large_message(limit: int) -> str:
    return f"This file is larger than {human_bytes(limit)}, the limit for a style LoRA: upload a smaller LoRA."


def target_for(spec: Any) -> TargetModel:
    """The TargetModel of a base-model spec (engine.checkpoints.BaseModelSpec): the cross-attention width
    from ``<source>/unet/config.json`` when the source is a local diffusers folder, else the family's."""
    dim = _configured_cross_attention(getattr(spec, "source", "") or "")
    if dim is None and getattr(spec, "is_demo", False):
        dim = DEMO_CROSS_ATTENTION.get(spec.name)
    if dim is None:
        dim = FAMILY_CROSS_ATTENTION[spec.family]
    label = getattr(spec, "display_name", "") or spec.name
    return TargetModel(name=spec.name, family=spec.family, cross_attention_dim=dim, label=label)


def _configured_cross_attention(source: str) -> int | None:
    if not source:
        return None
    try:
        config_path = Path(source).expanduser() / "unet" / "config.json"
        if not config_path.is_file():
            return None
        value = json.loads(config_path.read_text(encoding="utf-8")).get("cross_attention_dim")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, list | tuple) and value:  # per-block widths: they are all the same in SD models
        value = value[0]
    return value if isinstance(value, int) and value > 0 else None


# --- The container --------------------------------------------------------------------------------------------


def _stream_size(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining > 0:
        chunk = stream.read(min(remaining, CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _looks_like_pickle(head: bytes) -> bool:
    # Pickle protocol 2+ opens with PROTO (0x80) and the protocol number; torch.save's zip container opens
    # with a local file header; the legacy torch format is a pickle too.
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith(b"PK\x03\x04")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise LoraRejected("bad_header", f"The safetensors header names the tensor {key!r} twice.")
        out[key] = value
    return out


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LoraRejected("bad_header", "This safetensors file's header is not text (UTF-8 JSON).") from None
    if not text.lstrip().startswith("{"):
        raise LoraRejected("bad_header", "This safetensors file's header is not a JSON object.")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except LoraRejected:
        raise
    except (ValueError, RecursionError):
        raise LoraRejected("bad_header", "This safetensors file's header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise LoraRejected("bad_header", "This safetensors file's header is not a JSON object.")
    return header


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _tensors(header: dict[str, Any], data_size: int) -> tuple[list[_Tensor], dict[str, str]]:
    metadata_raw = header.pop("__metadata__", None)
    metadata: dict[str, str] = {}
    if metadata_raw is not None:
        if not isinstance(metadata_raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()
        ):
            raise LoraRejected("bad_header", "This safetensors file's __metadata__ must map text to text.")
        metadata = dict(metadata_raw)
    tensors: list[_Tensor] = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise LoraRejected("bad_header", f"The header entry of tensor {name!r} is not an object.")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise LoraRejected("bad_header", f"Tensor {name!r} has an unknown dtype {dtype!r}.")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise LoraRejected("bad_header", f"Tensor {name!r} has no valid shape (a list of whole numbers).")
        if any(d < 0 for d in shape):
            raise LoraRejected("bad_header", f"Tensor {name!r} has a negative dimension in its shape {shape}.")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[1] < offsets[0]
        ):
            raise LoraRejected("bad_header", f"Tensor {name!r} has invalid data_offsets {offsets!r}.")
        expected = math.prod(shape) * DTYPE_SIZES[dtype]
        if offsets[1] - offsets[0] != expected:
            raise LoraRejected(
                "bad_header",
                f"Tensor {name!r} ({dtype}, shape {shape}) should take {expected} bytes, but its data_offsets "
                f"give {offsets[1] - offsets[0]}: the file is damaged or not a real safetensors file.",
            )
        tensors.append(_Tensor(name, dtype, tuple(shape), offsets[0], offsets[1]))
    position = 0
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if tensor.begin != position:
            problem = "overlaps another tensor" if tensor.begin < position else "leaves a gap before it"
            raise LoraRejected(
                "bad_header",
                f"Tensor {tensor.name!r}'s data_offsets don't match the layout (it {problem}): the file is "
                "damaged or not a real safetensors file.",
            )
        position = tensor.end
    if position != data_size:
        if position > data_size:
            raise LoraRejected(
                "truncated",
                f"The file is shorter than its header says ({human_bytes(data_size)} of tensor data, "
                f"{human_bytes(position)} expected): it was cut off. Upload the complete file.",
            )
        raise LoraRejected(
            "bad_header",
            "The file has data its header doesn't account for (the tensor offsets don't match the file size): "
            "the file is damaged or not a real safetensors file.",
        )
    return tensors, metadata


# --- The keys -------------------------------------------------------------------------------------------------


@dataclass
class _Module:
    key: str  # the module's name without the LoRA suffix
    component: str  # "unet", "text_encoder", "text_encoder_2"
    down: _Tensor | None = None
    up: _Tensor | None = None
    alpha: _Tensor | None = None


def _classify(name: str) -> tuple[str, str, str]:
    """(module, component, role) of a LoRA key, or LoraRejected naming the key."""
    lowered = name.lower()
    if any(marker in lowered for marker in _LYCORIS_MARKERS) and lowered.startswith(("lora_", "lycoris_")):
        raise LoraRejected(
            "not_lora",
            f"{name!r} is a LyCORIS (LoHa/LoKr) weight: only plain LoRAs are supported. Export a LoRA instead.",
        )
    if name.startswith(_KOHYA_PREFIXES):
        for suffix, role in _KOHYA_SUFFIXES:
            if name.endswith(suffix):
                module = name[: -len(suffix)]
                if name.startswith("lora_unet_"):
                    component = "unet"
                elif name.startswith("lora_te2_"):
                    component = "text_encoder_2"
                else:
                    component = "text_encoder"
                return module, component, role
        raise _not_lora(name)
    prefixed = name.startswith(_DIFFUSERS_PREFIXES)
    bare = name.startswith(_BARE_UNET_PREFIXES)
    if prefixed or bare:
        for suffix, role in _DIFFUSERS_SUFFIXES:
            if name.endswith(suffix):
                module = name[: -len(suffix)]
                component = name.split(".", 1)[0] if prefixed else "unet"
                if bare and role == "alpha":
                    continue  # a bare ".alpha" is not a LoRA name
                return module, component, role
    if name.startswith(_CHECKPOINT_PREFIXES) or (prefixed and name.endswith((".weight", ".bias"))):
        raise LoraRejected("checkpoint", NOT_LORA_CHECKPOINT.format(key=name))
    raise _not_lora(name)


def _not_lora(name: str) -> LoraRejected:
    return LoraRejected(
        "not_lora",
        f"{name!r} is not a LoRA weight. A style LoRA holds only LoRA keys (diffusers: unet.….lora_A.weight / "
        "lora_B.weight; kohya: lora_unet_….lora_down.weight / lora_up.weight, .alpha).",
    )


def _modules(tensors: Iterable[_Tensor]) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    for tensor in tensors:
        module_key, component, role = _classify(tensor.name)
        if role == "extra":
            continue
        if tensor.dtype not in FLOAT_DTYPES:
            raise LoraRejected(
                "not_lora", f"{tensor.name!r} is stored as {tensor.dtype}: a LoRA's weights are floating point."
            )
        module = modules.setdefault(module_key, _Module(key=module_key, component=component))
        setattr(module, role, tensor)
    return modules


def _check_pairs(modules: dict[str, _Module]) -> int | None:
    """Every module has its down and up matrices with matching ranks; returns the largest rank."""
    ranks = []
    for module in modules.values():
        if module.down is None or module.up is None:
            have, missing = ("up", "down") if module.down is None else ("down", "up")
            if module.down is None and module.up is None:  # only an alpha
                raise LoraRejected(
                    "bad_pair", f"{module.key!r} has an alpha but no LoRA matrices: the file is incomplete."
                )
            raise LoraRejected(
                "bad_pair",
                f"{module.key!r} has a LoRA {have} matrix but no {missing} matrix: the file is incomplete.",
            )
        down, up = module.down.shape, module.up.shape
        if len(down) not in (2, 4) or len(up) not in (2, 4):
            raise LoraRejected(
                "bad_pair", f"{module.key!r}: LoRA matrices have 2 (linear) or 4 (convolution) dimensions."
            )
        rank = down[0]
        if rank == 0 or up[1] != rank:
            raise LoraRejected(
                "bad_pair",
                f"{module.key!r}: the down matrix has rank {rank} but the up matrix expects {up[1]} "
                f"(shapes {list(down)} and {list(up)}): the pair doesn't fit together.",
            )
        if module.alpha is not None and math.prod(module.alpha.shape) != 1:
            raise LoraRejected("bad_pair", f"{module.key!r}: alpha must be a single number.")
        ranks.append(rank)
    return max(ranks) if ranks else None


def _cross_attention_widths(modules: dict[str, _Module]) -> set[int]:
    widths = set()
    for module in modules.values():
        if module.component == "unet" and module.down is not None and _CROSS_ATTENTION_KV.search(module.key):
            widths.add(module.down.shape[1])
    return widths


def _family_mismatch(found: str, target: TargetModel) -> LoraRejected:
    return LoraRejected(
        "wrong_family",
        f"This style LoRA was made for {FAMILY_LABELS.get(found, found)}; {target.display} is an "
        f"{FAMILY_LABELS.get(target.family, target.family)} model. Choose a matching base model, or a LoRA "
        "trained for this one.",
    )


def _check_fit(modules: dict[str, _Module], target: TargetModel) -> int | None:
    components = {m.component for m in modules.values()}
    if "text_encoder_2" in components and target.family != "sdxl":
        raise _family_mismatch("sdxl", target)
    widths = _cross_attention_widths(modules)
    if len(widths) > 1:
        raise LoraRejected(
            "wrong_shape",
            f"The LoRA's cross-attention layers take different widths ({', '.join(map(str, sorted(widths)))}): "
            "it mixes layers of different models.",
        )
    if not widths:
        return None
    (width,) = widths
    if width == target.cross_attention_dim:
        return width
    for family, family_width in FAMILY_CROSS_ATTENTION.items():
        if width == family_width and family != target.family:
            raise _family_mismatch(family, target)
    other = OTHER_CROSS_ATTENTION.get(width)
    if other:
        raise LoraRejected(
            "wrong_family",
            f"This style LoRA was made for {other}, which is not supported: use an SD 1.5 or SDXL LoRA.",
        )
    raise LoraRejected(
        "wrong_shape",
        f"This LoRA's cross-attention layers take {width} features; {target.display} expects "
        f"{target.cross_attention_dim}: it was made for a different base model.",
    )


# --- Entry point ----------------------------------------------------------------------------------------------


def check_style_lora(
    stream: BinaryIO, *, target: TargetModel, filename: str = "", limit: int | None = None
) -> LoraInfo:
    """Check an uploaded style LoRA (a seekable binary stream) against the base model it is meant for; return
    its LoraInfo or raise LoraRejected with a message for people. Reads the header, then hashes the file in
    chunks; tensor data is never interpreted."""
    limit = max_bytes() if limit is None else int(limit)
    if filename and filename.lower().endswith(PICKLE_EXTENSIONS):
        raise LoraRejected("pickle", PICKLE_MESSAGE)
    size = _stream_size(stream)
    if size == 0:
        raise LoraRejected("empty", "The file is empty: upload the LoRA's .safetensors file.")
    if size > limit:
        raise LoraRejected("too_large", too_large_message(limit))
    head = _read_exactly(stream, 9)
    header_len = int.from_bytes(head[:8], "little")
    # A safetensors file opens with its header length and then "{"; only what doesn't is looked at as pickle
    # (a header length such as 0x0280 starts with the same byte pair as a protocol-2 pickle).
    plausible = len(head) == 9 and head[8:9] == b"{" and 0 < header_len <= MAX_HEADER_BYTES
    if not plausible and _looks_like_pickle(head):
        raise LoraRejected("pickle", PICKLE_MESSAGE)
    if len(head) < 9:
        raise LoraRejected("truncated", "The file is too short to be a safetensors file.")
    if header_len == 0 or header_len > MAX_HEADER_BYTES:
        raise LoraRejected(
            "not_safetensors",
            "This is not a safetensors file (its first 8 bytes don't give a plausible header length).",
        )
    if 8 + header_len > size:
        raise LoraRejected(
            "truncated",
            f"The safetensors header says it is {human_bytes(header_len)} long but the file is only "
            f"{human_bytes(size)}: it was cut off, or it is not a safetensors file.",
        )
    stream.seek(8)
    header = _parse_header(_read_exactly(stream, header_len))
    tensors, metadata = _tensors(header, size - 8 - header_len)
    if not tensors:
        raise LoraRejected("no_tensors", "This safetensors file holds no tensors: it is not a LoRA.")
    modules = _modules(tensors)
    if not modules:
        raise LoraRejected("no_tensors", "This file holds no LoRA matrices.")
    rank = _check_pairs(modules)
    width = _check_fit(modules, target)
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    stream.seek(0)
    return LoraInfo(
        family=target.family,
        rank=rank,
        tensors=len(tensors),
        sha256=digest.hexdigest(),
        size=size,
        cross_attention_dim=width,
        components=tuple(sorted({m.component for m in modules.values()})),
        metadata=metadata,
    )
