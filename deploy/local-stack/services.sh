#!/usr/bin/env bash
# The x0 services as background processes beside the stack (make up / down / status):
#   services.sh up | down | status
# The work is done by services.py (its docstring says how), with the workspace's Python:
# it starts every process through x0_common.testing.processes, as the tests and bench do.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="$REPO_ROOT/.venv/bin/python"
if [[ ! -x "$PYTHON" ]]; then
  [[ "${1:-}" != up ]] || { echo "services.sh: error: no virtual environment at $REPO_ROOT/.venv: run 'make setup' first" >&2; exit 1; }
  # Nothing can have been started without it.
  [[ "${1:-}" != status ]] || { echo "x0 services      stopped (no .venv)"; exit 1; }
  exit 0
fi
exec "$PYTHON" "$REPO_ROOT/deploy/local-stack/services.py" "$@"
