#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install cryoscape into it.
# PyTorch is installed first and pinned, so pip does not pull a multi-GB CUDA build
# where a CPU build is available; the package's own `torch>=2.2` is then already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CRYOSCAPE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "cryoscape setup: creating $VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "cryoscape setup: installing torch==2.13.0"
    "$VENV/bin/python" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
fi
echo "cryoscape setup: installing cryoscape${1:+[$1]}"
"$VENV/bin/python" -m pip install -q -e ".${1:+[$1]}" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import cryoscape, torch; print('cryoscape', cryoscape.__version__, '| torch', torch.__version__)"
