#!/usr/bin/env bash
# Set up and run the whole test suite, from a fresh clone.
#
# Two virtual environments, created on first use and reused afterwards:
#   .venv-py39   Python 3.9 + numpy 1.26.4 + scipy 1.13.1   (what Slicer 5.8 bundles)
#   .venv-py312  Python 3.12 + current numpy/scipy + slicer-core (Slicer 5.10+; real MRML tests)
# Each gets the package (editable) and the test-only oracles (statsmodels, pingouin,
# scikit-learn, highdicom, hypothesis); .venv-py312 also gets vermin, which checks
# statically that every file runs on Python 3.9.  Real-data tests use ../shared (or
# $PARASPINALFAT_SHARED) and skip with a message when it is absent.
#
# Usage: bash Testing/run_tests.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # $1 = major.minor
  local v="$1" p
  if command -v pyenv >/dev/null 2>&1; then
    p=$(ls -d "$(pyenv root)"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; return 0; fi
  fi
  if command -v "python$v" >/dev/null 2>&1; then command -v "python$v"; return 0; fi
  echo "Testing/run_tests.sh: Python $v not found (install it, e.g. 'pyenv install $v')" >&2
  return 1
}

setup_venv() {  # $1 = venv dir, $2 = python, $3... = extra pip requirements
  local dir="$1" py="$2"; shift 2
  if [ ! -x "$dir/bin/python" ]; then
    echo "== creating $dir with $("$py" --version)"
    "$py" -m venv "$dir"
  fi
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -U pip
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]" "$@"
  "$dir/bin/python" -c "import ParaspinalFatLib, numpy, scipy; print('   ', '$dir', 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
}

PY39=$(find_python 3.9)
PY312=$(find_python 3.12)
setup_venv .venv-py39 "$PY39" "numpy==1.26.4" "scipy==1.13.1"
setup_venv .venv-py312 "$PY312" "slicer-core" "vermin>=1.6"

status=0
echo "== Python 3.9 compatibility, checked statically (vermin) on every file"
.venv-py312/bin/vermin -q -t=3.9- --eval-annotations --feature union-types --violations --no-tips \
  ParaspinalFatLib ParaspinalFat Testing Resources || { echo "vermin: code needs a Python newer than 3.9 (above)"; status=1; }
echo "== tests on Python 3.9 / numpy 1.26 / scipy 1.13"
.venv-py39/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
echo "== tests on Python 3.12 / current numpy + slicer-core"
.venv-py312/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
exit $status
