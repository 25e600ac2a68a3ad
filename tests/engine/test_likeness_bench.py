"""bench/likeness.py's pieces: the split by original photo, a whole run on the tiny model (train, render, score,
more like me, the last checkpoint converted and rendered) and the summary line's figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from engine.likeness import likeness_report
from tests.face_fixtures import FACES

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_likeness", ROOT / "bench" / "likeness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_split_holds_out_whole_originals() -> None:
    paths = [Path(f"/x/{name}-{label}.jpg") for name in ("b", "a", "d", "c") for label in ("orig", "flip", "crop")]
    paths.append(Path("/x/e.png"))  # no "-": its own original
    training, heldout = bench.split_by_original(paths, 2)
    assert {bench.original_of(p) for p in heldout} == {"d", "e"}
    assert {bench.original_of(p) for p in training} == {"a", "b", "c"}
    assert len(training) == 9 and len(heldout) == 4
    for count in (0, 5):
        with pytest.raises(ValueError):
            bench.split_by_original(paths, count)


@pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}")
def test_a_tiny_run_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    from engine.checkpoints import build_tiny_model

    spec = build_tiny_model(tmp_path / "models")
    photos = bench.client_photos(None, tmp_path)
    outcome = bench.run(
        spec=spec,
        photo_paths=photos,
        work=tmp_path,
        heldout=2,
        steps=2,
        prompts=1,
        seeds=2,
        render_steps=2,
        device="cpu",
        render_last=True,
    )
    assert (outcome.photos, outcome.originals, outcome.training_photos, outcome.heldout_photos) == (20, 4, 10, 10)
    report = outcome.base.report
    # the held-out photos all have faces; the tiny model's 64 px noise has none
    assert report.heldout_photos == 10 and report.training_photos == 10
    assert (report.summary.count, report.faces, report.summary.scored, report.copies) == (2, 0, 0, 0)
    assert [r["seed"] for r in outcome.base.recipes] == [0, 1]
    # more like me: the same seeds, one step more identity
    assert [r["identity_weight"] for r in outcome.more.recipes] == [1.15, 1.15]
    assert [r["seed"] for r in outcome.more.recipes] == [0, 1]
    # every score is 0 on noise, so training keeps the latest: the converted last checkpoint is the final LoRA
    assert outcome.best_step == outcome.last_step == 2 and set(outcome.checkpoint_scores) == {1, 2}
    assert outcome.last is not None
    for ours, final in zip(outcome.last.images, outcome.base.images, strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(final))
    line = bench.summary_line(outcome)
    assert line.startswith("likeness: tiny-sd15 (sd15), cpu, 20 photos (4 originals: 10 trained on, 10 held out)")
    assert "2 portraits, 0 faces (tiny model: noise), held-out centroid from 10 photos" in line
    assert "picks above line n/a, copies 0" in line and "more-like-me n/a" in line
    assert "best step 2, last step 2" in line


def _vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_summary_line_with_faces() -> None:
    heldout, training = [_vec(0, 0)], [_vec(1, 0), _vec(0, 1)]
    base = likeness_report([_vec(0.3, 0), _vec(0.9, 0), _vec(0.98, 0.0), None], heldout, training)
    more = likeness_report([_vec(0.2, 0), _vec(0.8, 0), _vec(0.99, 0.0), None], heldout, training)
    last = likeness_report([_vec(0.4, 0), _vec(0.9, 0), _vec(0.7, 0.0), None], heldout, training)
    outcome = bench.Outcome(
        model="real (sd15)",
        is_demo=False,
        device="cuda",
        photos=20,
        originals=4,
        training_photos=15,
        heldout_photos=5,
        heldout_originals=1,
        steps=800,
        train_seconds=120.0,
        best_step=600,
        last_step=800,
        checkpoint_scores={600: 71.0, 700: 70.0, 800: 69.0},
        base=bench.Rendered([], [], base),
        more=bench.Rendered([], [], more),
        last=bench.Rendered([], [], last),
        seconds=300.0,
    )
    line = bench.summary_line(outcome)
    # likeness 75, 25, 18 (distances 0.3, 0.9, 0.98); the second and third lie 0.1 and 0.02 from a training
    # photo, far less than half their held-out distance: copies
    assert "4 portraits, 3 faces, held-out centroid from 1 photos" in line
    assert "median likeness 25, picks above line 1/3 (33%), copies 2" in line
    assert "more-like-me: likeness rose for 2/3, median 25 -> 33" in line
    assert "best step 600, last step 800; validation likeness step 600: 71, step 700: 70, step 800: 69" in line
    assert "held-out median best 25 vs last 42, copies 2 vs 1" in line
