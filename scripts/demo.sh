#!/usr/bin/env bash
# The main job on the embedded default: set up, then build, summarise and serve the demo fleet.
#   bash scripts/demo.sh              (serves the API on http://127.0.0.1:8080 until Ctrl-C)
#   bash scripts/demo.sh --no-serve   (builds and summarises, then exits)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
export CORRAL_HOME="${CORRAL_HOME:-$root/var/home}"
exec "$root/.venv/bin/corral" demo "$@"
