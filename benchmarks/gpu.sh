#!/usr/bin/env bash
# The GPU checks, as one script for a GPU host (no network, no cargo, no pip install).
# Run from the repository root with PYTHONPATH=python and a prebuilt
# python/dau/_native.abi3.so in place:
#
#     PYTHONPATH=python OUT=/some/dir bash benchmarks/gpu.sh
#
# Builds the CUDA ops, runs the cuda-marked tests, then the op, masked-SGD and DAU-step
# benchmarks on cuda (with torch.profiler tables of both sides of every case, so a missed
# goal comes with where the time goes) and the sensitivity precision measurement; logs,
# profiles and JSON go to
# $OUT (default: a temporary directory). Each section has a time limit, a failing
# section does not stop the others, and the exit status is non-zero if any failed.
# Budget: under 7 minutes on one H100.
set -u

OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="${PYTHONPATH:-python}"
BUDGET="${BUDGET:-400}"  # seconds for everything; a section gets at most what is left
failed=()

section() {  # section NAME SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - SECONDS))
    [ "$limit" -le "$left" ] || limit=$left
    if [ "$limit" -lt 5 ]; then
        echo "=== $name: skipped, the time budget is spent" | tee -a "$OUT/summary.txt"
        failed+=("$name")
        return
    fi
    echo "=== $name (limit ${limit}s)" | tee -a "$OUT/summary.txt"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "--- $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || failed+=("$name")
}

section info 30 "$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
section build-cuda-ops 130 env DAU_CUDA=1 "$PY" csrc/build_ops.py --out-dir python/dau
section dau-info 30 "$PY" -c "from dau.cli import main; main(['info'])"
section pytest-cuda 90 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
if [ -f benchmarks/bench_ops.py ]; then
    section bench-ops 60 "$PY" benchmarks/bench_ops.py --device cuda --quick --json "$OUT/bench_ops.json" \
        --profile "$OUT/profile-ops.txt"
fi
section bench-masked-sgd 30 "$PY" benchmarks/bench_masked_sgd.py --device cuda --quick
section bench-step 75 "$PY" benchmarks/bench_step.py --device cuda --repeats 5 --json "$OUT/bench_step.json" \
    --profile "$OUT/profile-step.txt"
section sensitivity-precision 30 "$PY" benchmarks/sensitivity_precision.py --device cuda \
    --json "$OUT/sensitivity_precision.json"
# the host's server CPU as a second CPU: oneDNN's NHWC 1x1 bug and the layout policy there
section cpu-layout 60 "$PY" -m pytest -q -p no:cacheprovider tests/models/test_layout.py \
    -k "reproducer or default_layout_are_right or (sweep and resnet18 and 0.125)"

echo "logs and JSON in $OUT"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED sections: ${failed[*]}" | tee -a "$OUT/summary.txt"
    exit 1
fi
echo "all sections passed" | tee -a "$OUT/summary.txt"
