#!/usr/bin/env bash
# Prepare what must travel to an offline GPU machine (Python 3.12, x86-64 manylinux) for the GPU
# check: wheels of llem's dependencies that such a machine lacks (pydantic and its own needs,
# Zeus for the optional comparison) and llem's own wheel, in gpu_bundle/ (ignored by git; name it
# in the device tool's `carry`). Prints the bundle's size and fails if the bundle plus the
# working tree would pass the 64 MiB travel limit.
#
#   bash benchmarks/prepare_gpu_bundle.sh [BUNDLE_DIR]
#
# Versions are those installed here (what the tests ran against); PY_VERSION and PLATFORMS
# override the target.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-gpu_bundle}
PY=${PYTHON:-python}
PY_VERSION=${PY_VERSION:-3.12}
LIMIT_MIB=${LIMIT_MIB:-64}
PLATFORMS=${PLATFORMS:-"manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux1_x86_64"}
# What llem imports that the GPU image lacks (its other dependencies, typer, rich, pyyaml,
# numpy, pyarrow, psutil and nvidia-ml-py, are there). Zeus' own needs (pandas, scikit-learn,
# httpx, python-dateutil) are there too; it imports amdsmi only on AMD machines.
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions zeus)
ZEUS_VERSION=${ZEUS_VERSION:-0.16.0}

version_of() {  # the installed version of a distribution, empty when not installed
    "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"
}

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"
pins=()
for name in "${PACKAGES[@]}"; do
    version=$(version_of "$name")
    if [[ $name == zeus && -z $version ]]; then version=$ZEUS_VERSION; fi
    pins+=("${name}${version:+==$version}")
done
platform_args=()
for p in $PLATFORMS; do platform_args+=(--platform "$p"); done
echo "downloading for CPython $PY_VERSION: ${pins[*]}"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp "${platform_args[@]}" -d "$BUNDLE" "${pins[@]}"
echo "building llenergymeasure's wheel"
had_build=$([[ -e build ]] && echo yes || true)
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$BUNDLE" .
[[ -n $had_build ]] || rm -rf build  # the in-tree build's leftovers (ignored by git anyway)
rm -rf src/llenergymeasure.egg-info

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -v "^?? $BUNDLE" | head -1 || true)
{
    echo "# gpu bundle: built $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $commit${dirty:+ (uncommitted changes)}"
    echo "# target: CPython $PY_VERSION, $PLATFORMS"
    (cd "$BUNDLE" && ls -l -- *.whl | awk '{print $5, $9}')
} >"$BUNDLE/MANIFEST.txt"

bundle_bytes=$(du -sb "$BUNDLE" | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((bundle_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
cat "$BUNDLE/MANIFEST.txt"
echo "bundle $(mib "$bundle_bytes"), working tree $(mib "$tree_bytes"), together $(mib "$total") (limit $LIMIT_MIB MiB)"
if ((total > LIMIT_MIB * 1048576)); then
    echo "too large to travel: drop something from the bundle" >&2
    exit 1
fi
