"""Which device and dtype the engine runs on.

Plain Python (no Django). CUDA when present, with bfloat16 where the GPU supports it (Ampere and newer) and
float16 otherwise; the CPU always runs in float32 (half precision on the CPU is slow and lossy). CUDA is only
touched when this is called, never at import time, so a web process that imports the engine never initialises it.
"""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(prefer: str | None = None) -> tuple[torch.device, torch.dtype]:
    """The device to run on and the half-precision dtype to use there (float32 on the CPU).

    ``prefer``: ``None`` or ``"auto"`` picks CUDA when available, else the CPU; ``"cpu"`` forces the CPU;
    ``"cuda"`` (or ``"cuda:N"``) forces that GPU and raises :class:`RuntimeError` when CUDA is not available.
    Anything else raises :class:`ValueError`.
    """
    choice = (prefer or "auto").strip().lower()
    if choice == "cpu":
        return torch.device("cpu"), torch.float32
    if choice == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu"), torch.float32
        choice = "cuda"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was asked for, but CUDA is not available on this machine")
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {prefer!r}: this machine has {torch.cuda.device_count()} GPU(s)")
        with torch.cuda.device(device.index or 0):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return device, dtype
    raise ValueError(f"unknown device {prefer!r}: use 'cpu', 'cuda', 'cuda:N' or leave it empty")
