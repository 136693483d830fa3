#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest): a virtual environment with the pinned test
# dependencies of python/requirements-test.txt (installed once; again when the file changes), the
# package installed into it by `pip install ./python`, then pytest. Needs the release build of the
# isovec binary (the tests compare against it) and, for the data-backed tests, ISOVEC_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${ISOVEC_PYENV:-$HOME/.cache/isovec-pyenv}"
target="${CARGO_TARGET_DIR:-target}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
stamp="$venv/.isovec-requirements.sha256"
want=$(sha256sum python/requirements-test.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r python/requirements-test.txt
  echo "$want" > "$stamp"
fi
# Installed as a user installs it, `pip install ./python` (PEP 517, maturin; the venv already
# has the pinned maturin, on PATH, so no build isolation).
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip install -q --force-reinstall --no-deps --no-build-isolation ./python
# From the checkout's root, so that `import isovec` finds the installed wheel, not python/isovec.
ISOVEC_BIN="${ISOVEC_BIN:-$target/release/isovec}" "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=5 python/tests "$@"
