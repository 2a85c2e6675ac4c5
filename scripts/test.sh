#!/usr/bin/env bash
# Set up the environment and run the test suite (the README's test command).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit 1
"${CRYOSCAPE_VENV:-.venv}/bin/python" -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "cryoscape tests: pytest collected no tests"
    exit 0
fi
exit "$rc"
