#!/usr/bin/env bash
# The main job on the built-in default: simulate the demo molecule, reconstruct, train, write maps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${CRYOSCAPE_VENV:-.venv}/bin/cryoscape" demo "$@"
