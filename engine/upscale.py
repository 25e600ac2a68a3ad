"""Print-size output: tiles, their blending, and the operator's optional super-resolution model.

Plain Python (no Django). The upscale stage (:mod:`engine.portrait`) enlarges a render to the long side a
template asks for in two steps:

1. **Enlarge**: with the operator's super-resolution model when one is configured (:class:`SuperResolution`, an
   ESRGAN-family network loaded by ``spandrel`` from a local file; only spandrel's core architectures, all
   under permissive licences, never ``spandrel_extra_arches``), applied in tiles and repeated until the image is
   at least as large as asked, then resized to the exact size; otherwise Lanczos.
2. **Refine** (the "hires fix" family): the enlarged image is cut into tiles of the model's native size that
   overlap by an eighth of a tile (:func:`tile_boxes`), each tile is re-rendered by img2img at a low denoise with
   the same model, prompt and LoRAs, and the tiles are blended back with linear ramps across the overlaps
   (:func:`blend_tiles`), so no seam shows.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]


def target_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """`size` (width, height) scaled so its long side is `long_side` (aspect ratio kept, at least 1 px)."""
    width, height = size
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    count = -(-(length - tile) // stride) + 1
    # Spread the tiles evenly so the last one ends at the edge (overlaps are at least `overlap`).
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_boxes(size: tuple[int, int], tile: int, overlap: int) -> list[Box]:
    """Boxes of `tile` × `tile` (smaller only where the image is) covering an image of `size`, overlapping by at
    least `overlap`, row by row."""
    if tile < 8 or not 0 <= overlap < tile:
        raise ValueError("tiles must be at least 8 px and overlap by less than a tile")
    width, height = size
    boxes = []
    for top in _starts(height, tile, overlap):
        for left in _starts(width, tile, overlap):
            boxes.append((left, top, min(left + tile, width), min(top + tile, height)))
    return boxes


def _ramp(length: int, low_open: bool, high_open: bool, overlap: int) -> np.ndarray:
    """1 in the middle, rising linearly over `overlap` px at an edge that meets another tile."""
    weights = np.ones(length, dtype=np.float32)
    ramp = np.linspace(1.0 / (overlap + 1), 1.0, overlap, endpoint=False, dtype=np.float32) if overlap else None
    if ramp is not None and low_open:
        weights[: len(ramp)] = np.minimum(weights[: len(ramp)], ramp[:length])
    if ramp is not None and high_open:
        weights[-len(ramp) :] = np.minimum(weights[-len(ramp) :], ramp[::-1][-length:])
    return weights


def blend_tiles(size: tuple[int, int], boxes: Sequence[Box], tiles: Sequence[Image.Image], overlap: int) -> Image.Image:
    """The tiles (each the size of its box) blended into one image of `size`: linear ramps where tiles overlap,
    full weight elsewhere (an image cut by :func:`tile_boxes` and blended back unchanged is the same image)."""
    width, height = size
    total = np.zeros((height, width, 3), dtype=np.float32)  # float32: a 3000 px print is 108 MB, not 216
    weight = np.zeros((height, width, 1), dtype=np.float32)
    for box, tile in zip(boxes, tiles, strict=True):
        left, top, right, bottom = box
        pixels = np.asarray(tile.convert("RGB"), dtype=np.float32)
        if pixels.shape[:2] != (bottom - top, right - left):
            raise ValueError("a tile does not match its box")
        wy = _ramp(bottom - top, top > 0, bottom < height, overlap)
        wx = _ramp(right - left, left > 0, right < width, overlap)
        w = (wy[:, None] * wx[None, :])[:, :, None]
        total[top:bottom, left:right] += pixels * w
        weight[top:bottom, left:right] += w
    out = total / np.maximum(weight, 1e-6)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def import_spandrel() -> Any:
    """spandrel, imported without torchvision. spandrel's registry imports every architecture it knows, and two of
    them (LaMa, RestoreFormer: an inpainting and a face-restoration model, neither a super-resolution network)
    import ``torchvision.transforms.functional`` at import time. torchvision is not installed (its PyPI wheels
    would pull a CUDA build of torch), so a placeholder stands in for the length of that import only; a model of
    those two architectures is refused (they don't enlarge images). ValueError when spandrel is missing."""
    import importlib
    import importlib.util
    import sys
    import types

    placeholders: dict[str, types.ModuleType] = {}
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
        placeholders = {name: types.ModuleType(name) for name in names}
        functional = placeholders["torchvision.transforms.functional"]

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("torchvision is not installed: this architecture can't run here")

        functional.InterpolationMode = type("InterpolationMode", (), {"BILINEAR": "bilinear", "NEAREST": "nearest"})  # type: ignore[attr-defined]
        functional.rotate = functional.normalize = unavailable  # type: ignore[attr-defined]
        placeholders["torchvision.transforms"].functional = functional  # type: ignore[attr-defined]
        placeholders["torchvision"].transforms = placeholders["torchvision.transforms"]  # type: ignore[attr-defined]
        sys.modules.update(placeholders)
    try:
        return importlib.import_module("spandrel")
    except ImportError as exc:
        raise ValueError(f"a super-resolution model is configured but spandrel can't be imported ({exc})") from None
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


@dataclass
class SuperResolution:
    """An ESRGAN-family super-resolution network from a local file (.pth / .safetensors), loaded with spandrel
    (once per process per path); `scale` is the network's own factor. Runs in tiles of `tile` px."""

    path: Path
    device: Any = None
    tile: int = 256
    _model: Any = None
    sha256: str = ""
    architecture: str = ""
    scale: int = 1

    _lock = threading.Lock()

    def load(self) -> SuperResolution:
        if self._model is not None:
            return self
        with self._lock:
            spandrel = import_spandrel()
            ImageModelDescriptor, ModelLoader = spandrel.ImageModelDescriptor, spandrel.ModelLoader  # noqa: N806
            path = Path(self.path)
            if not path.is_file():
                raise ValueError(f"the super-resolution model {str(path)!r} does not exist")
            try:
                descriptor = ModelLoader(device=self.device or "cpu").load_from_file(str(path))
            except Exception as exc:  # spandrel raises its own errors for unknown or broken files
                raise ValueError(f"the super-resolution model {path.name!r} can't be loaded: {exc}") from None
            if not isinstance(descriptor, ImageModelDescriptor) or descriptor.scale < 2:
                raise ValueError(f"{path.name!r} is not a super-resolution model (it doesn't enlarge images)")
            descriptor.eval()
            self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            self.architecture = str(descriptor.architecture.name)
            self.scale = int(descriptor.scale)
            self._model = descriptor
        return self

    def upscale_once(self, image: Image.Image) -> Image.Image:
        """`image` enlarged by the network's factor, in overlapping tiles."""
        import torch

        model = self.load()._model
        rgb = image.convert("RGB")
        overlap = max(8, self.tile // 8)
        boxes = tile_boxes(rgb.size, self.tile, overlap)
        out_tiles = []
        device = next(model.model.parameters()).device
        for box in boxes:
            array = np.asarray(rgb.crop(box), dtype=np.float32) / 255.0
            tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)
            with torch.inference_mode():
                result = model(tensor).clamp(0, 1)
            pixels = (result[0].permute(1, 2, 0).float().cpu().numpy() * 255.0).round().astype(np.uint8)
            out_tiles.append(Image.fromarray(pixels, mode="RGB"))
        scaled = [tuple(v * self.scale for v in box) for box in boxes]
        size = (rgb.width * self.scale, rgb.height * self.scale)
        return blend_tiles(size, scaled, out_tiles, overlap * self.scale)  # type: ignore[arg-type]

    def upscale_to(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        """`image` enlarged by the network until it is at least `size`, then resized to exactly `size`."""
        current = image.convert("RGB")
        self.load()
        while current.width < size[0] or current.height < size[1]:
            current = self.upscale_once(current)
        return current.resize(size, Image.Resampling.LANCZOS) if current.size != size else current


_SR_MODELS: dict[str, SuperResolution] = {}


def super_resolution(path: str | Path, device: Any = None) -> SuperResolution:
    """The process's loaded super-resolution model for `path` (loaded on first use)."""
    key = f"{Path(path).resolve()}@{device}"
    model = _SR_MODELS.get(key)
    if model is None:
        model = SuperResolution(path=Path(path), device=device).load()
        _SR_MODELS[key] = model
    return model
