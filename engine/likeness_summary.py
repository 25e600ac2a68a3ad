"""The figures of a set of likeness scores (how many scored, median, mean, share that looks like the client).

Standard library only (no numpy, no dlib), so the web pages can summarise stored likeness values without loading
the heavy engine modules (tests/test_layers.py, HEAVY_ENGINE_MODULES). :mod:`engine.likeness` re-exports it and
uses it for its likeness report; the scale itself is documented there.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LIKENESS_LINE", "LikenessSummary", "summarise_likeness"]

#: Likeness at dlib's same-person threshold (distance 0.6): at or above it a portrait "looks like the client".
LIKENESS_LINE = 50.0


@dataclass(frozen=True)
class LikenessSummary:
    """Figures of a set of likeness scores: ``count`` portraits, ``scored`` of them with a likeness, the median
    and mean of those, and how many (``above_line``) and what share of the scored ones (``share_above_line``,
    0-1) are at or above ``line`` (:data:`LIKENESS_LINE`). The statistics are ``None`` when nothing is scored."""

    count: int
    scored: int
    median: float | None
    mean: float | None
    above_line: int
    share_above_line: float | None
    line: float = LIKENESS_LINE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise_likeness(values: Iterable[float | None], *, line: float = LIKENESS_LINE) -> LikenessSummary:
    """:class:`LikenessSummary` of likeness values (``None``: not scored, e.g. no face)."""
    values = list(values)
    scored = [float(v) for v in values if v is not None]
    above = sum(1 for v in scored if v >= line)
    return LikenessSummary(
        count=len(values),
        scored=len(scored),
        median=float(statistics.median(scored)) if scored else None,
        mean=float(statistics.fmean(scored)) if scored else None,
        above_line=above,
        share_above_line=above / len(scored) if scored else None,
        line=line,
    )
