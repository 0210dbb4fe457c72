#!/usr/bin/env bash
# The GPU check on an offline GPU machine, in one command from the repository root:
#
#   bash benchmarks/gpu_check.sh [gpu_check.py options]        # e.g. --dry-run, --budget-sec 400
#
# 1. installs the travel bundle (gpu_bundle/, made by benchmarks/prepare_gpu_bundle.sh) offline
#    into a private folder: no network, no change to the system's packages;
# 2. runs benchmarks/gpu_check.py with this checkout's source first on the path (set
#    GPU_CHECK_INSTALLED_LLEM=1 to test the bundled llem wheel instead);
# 3. writes everything under GPU_CHECK_OUT (default gpu-check-out/) and, when $OUT is set (the
#    device tool's return folder), copies the summary, the log and one archive of the folder there.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUNDLE=${GPU_BUNDLE:-gpu_bundle}
SITE=${GPU_SITE:-/tmp/llem-gpu-site}
RESULTS=${GPU_CHECK_OUT:-$PWD/gpu-check-out}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export LLEM_CACHE_DIR=${LLEM_CACHE_DIR:-/tmp/llem-cache}

if compgen -G "$BUNDLE/*.whl" >/dev/null; then
    echo "installing $(ls "$BUNDLE"/*.whl | wc -l) wheels from $BUNDLE into $SITE (offline)"
    if "$PY" -m pip --version >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "$BUNDLE"/*.whl || exit 2
    else  # no pip: a wheel is a zip of site-packages
        mkdir -p "$SITE"
        for wheel in "$BUNDLE"/*.whl; do "$PY" -m zipfile -e "$wheel" "$SITE" || exit 2; done
    fi
    # Zeus' wheel ships top-level tests/, docs/ and examples/ folders: the first would shadow
    # this checkout's tests package (the dry run's fakes).
    rm -rf "$SITE/tests" "$SITE/docs" "$SITE/examples"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no wheels in $BUNDLE: using the packages already installed"
fi
"$PY" -c "import pydantic, typer, rich, yaml, pyarrow, psutil, pynvml" || {
    echo "a package llem needs is missing: run benchmarks/prepare_gpu_bundle.sh and carry $BUNDLE" >&2
    exit 2
}

mkdir -p "$RESULTS"
"$PY" benchmarks/gpu_check.py --out "$RESULTS" "$@" 2>&1 | tee "$RESULTS/gpu_check.log"
status=${PIPESTATUS[0]}
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
    cp "$RESULTS/summary.md" "$RESULTS/gpu_check.log" "$OUT/" 2>/dev/null
    [[ -f $RESULTS/runs.md ]] && cp "$RESULTS/runs.md" "$OUT/"
    tar -czf "$OUT/gpu-check.tar.gz" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"
    echo "copied summary.md, runs.md, gpu_check.log and gpu-check.tar.gz to $OUT" >&2
fi
exit "$status"
