#!/usr/bin/env bash
# Set up the environment, lint and type-check, then run the test suite (the README's test command).
# Arguments go to pytest; ruff (lint and format), mypy and vulture (dead code) always check the whole tree
# (configured in pyproject.toml; vulture's false positives are listed in vulture_whitelist.py).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit 1
PY="${CRYOSCAPE_VENV:-.venv}/bin/python"
"$PY" -m ruff check src tests benchmarks || { echo "cryoscape tests: ruff found problems"; exit 1; }
"$PY" -m ruff format --check src tests benchmarks || { echo "cryoscape tests: ruff format would change files (run: ruff format src tests benchmarks)"; exit 1; }
"$PY" -m mypy || { echo "cryoscape tests: mypy found problems"; exit 1; }
"$PY" -m vulture src benchmarks vulture_whitelist.py --min-confidence 60 || { echo "cryoscape tests: vulture found unused code (delete it, or list it in vulture_whitelist.py with why)"; exit 1; }
"$PY" -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "cryoscape tests: pytest collected no tests"
    exit 0
fi
exit "$rc"
