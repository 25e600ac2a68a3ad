#!/usr/bin/env bash
# Issue 18's GPU check: both real-size benchmarks on one H100, the lines to paste into the issue note.
#
#   bench/gpu_check.sh --prepare   # HERE, once (needs pip and the network): the wheels the device image lacks
#                                  # (diffusers, nudenet) into .gpu/whl, the face fixtures into .gpu/faces; .gpu/ is
#                                  # ignored (.git/info/exclude) and travels with `carry`
#   bench/gpu_check.sh             # THERE, from the repo root: device run, carry [".gpu"], timeout_s 420
#
# The device image (see /work/.library/device/KINDS.md) has torch, transformers, peft, accelerate, safetensors,
# onnxruntime and opencv, but no diffusers and no nudenet, and it can't reach the network: the wheels travel in
# .gpu/whl and are installed with --no-index into /tmp/site. What it runs, each under its own timeout so that one
# slow benchmark still leaves the other's line (the whole thing stays under 7 minutes: a rerun fits in the
# session's 15 minutes of device time):
#
#   1. bench/train.py --real-size --photos 20 (SD 1.5 at 512, random weights built on the GPU): the engine's step
#      against the plain diffusers/peft loop at batch 1 (3 interleaved pairs), then one complete 20-photo double
#      with the default schedule (batch 4 x 200 steps at lr 2e-4 on an 80 GB card) against the plain loop's
#      800 batch-1 steps;
#   2. bench/render.py --real-size --family both (SD 1.5 at 512 and SDXL at 1024): the engine's render against
#      the plain pipeline, the stages per image, and the run line (images/s per stage, batched across the
#      portraits against one portrait at a time).
#
# The log is also written to $OUT/gpu_check.log (it comes back even when a step times out).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .gpu/whl
    grep -qx '/.gpu/' "$(git rev-parse --git-common-dir)/info/exclude" 2>/dev/null \
        || echo '/.gpu/' >>"$(git rev-parse --git-common-dir)/info/exclude"
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/whl diffusers==0.42.1 nudenet==3.0.8 || exit 1
    faces="$(python3 -c 'from tests.face_fixtures import FACES; print(FACES)')"
    mkdir -p .gpu/faces && cp "$faces"/person_a_0[1-4].jpg .gpu/faces/ || exit 1
    du -sh .gpu
    exit 0
fi

OUT="${OUT:-$(mktemp -d)}"
LOG="$OUT/gpu_check.log"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ -d .gpu/whl ]] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[[ -d .gpu/faces ]] && export FACE_FIXTURES_DIR="$PWD/.gpu/faces"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch, diffusers, peft, transformers; print("torch", torch.__version__, "diffusers",
diffusers.__version__, "peft", peft.__version__, "transformers", transformers.__version__)'
    echo "== bench/train.py --real-size --photos 20"
    timeout 200 python3 bench/train.py --real-size --photos 20
    echo "rc=$?"
    echo "== bench/render.py --real-size --family both"
    timeout 200 python3 bench/render.py --real-size --family both --repeat 2
    echo "rc=$?"
    echo "== lines for the issue note"
} 2>&1 | grep -v -e '^Loading' -e 'it/s]$' | tee "$LOG"
grep -E '^(bench/train|bench/render|run |stages )' "$LOG"
