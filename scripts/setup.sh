#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install cryoscape into it.
# PyTorch is installed first and pinned, so pip does not pull a multi-GB CUDA build
# where a CPU build is available; the package's own `torch>=2.2` is then already satisfied.
# Usage: scripts/setup.sh [EXTRA]   (e.g. "test" installs cryoscape[test])
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CRYOSCAPE_VENV:-.venv}"
PY="${PYTHON:-python3}"

pip_install() {
    # pip's own warnings about this machine's local package mirrors are noise; errors still fail
    "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "cryoscape setup: creating $VENV"
    "$PY" -m venv "$VENV"
fi
pip_install --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "cryoscape setup: installing torch==2.13.0"
    pip_install "torch==2.13.0"
fi
echo "cryoscape setup: installing cryoscape${1:+[$1]}"
pip_install -e ".${1:+[$1]}"
"$VENV/bin/python" -c "import cryoscape, torch; print('cryoscape', cryoscape.__version__, '| torch', torch.__version__)"
