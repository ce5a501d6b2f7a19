#!/usr/bin/env bash
# The x0 services as background processes on this machine (no Docker), beside
# the stack that stack.sh runs.
#
#   services.sh up       start every service that is not running, wait until ready
#   services.sh down     stop them (SIGTERM, then SIGKILL after 20 s)
#   services.sh status   one line per service; exit 0 only if all run
#
# Logs (JSON lines) go to .stack/services/<name>.log, pids to <name>.pid.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${X0_STACK_DIR:-$REPO_ROOT/.stack}/services"
GATEWAY_PORT="${X0_GATEWAY_PORT:-8000}"
CRYPTO_PORT="${X0_CRYPTO_PORT:-8001}"
RAG_PORT="${X0_RAG_PORT:-8002}"
TELEMETRY_PORT="${X0_TELEMETRY_PORT:-8003}"

# name|python module|readiness URL. Workers join this list as they land.
SERVICES=(
  "crypto|x0_crypto|http://127.0.0.1:$CRYPTO_PORT/health/ready"
  "rag|x0_rag|http://127.0.0.1:$RAG_PORT/health/ready"
  "telemetry|x0_telemetry|http://127.0.0.1:$TELEMETRY_PORT/health/ready"
  "gateway|x0_gateway|http://127.0.0.1:$GATEWAY_PORT/health/ready"
)

log() { printf '%s\n' "$*"; }
die() { printf 'services.sh: error: %s\n' "$*" >&2; exit 1; }

live_pid() {
  local file="$RUN_DIR/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

start_one() {
  local name=$1 module=$2 ready_url=$3 pid i
  if pid="$(live_pid "$name")"; then
    log "$name: already running (pid $pid)"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  (
    cd "$REPO_ROOT"
    # Thread counts on purpose: BLAS and torch would otherwise fight over the cores.
    OPENBLAS_NUM_THREADS=1 X0_GATEWAY_PORT="$GATEWAY_PORT" X0_CRYPTO_PORT="$CRYPTO_PORT" X0_RAG_PORT="$RAG_PORT" \
      X0_TELEMETRY_PORT="$TELEMETRY_PORT" nohup "$REPO_ROOT/.venv/bin/python" -m "$module" >>"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
  )
  pid="$(cat "$RUN_DIR/$name.pid")"
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$RUN_DIR/$name.log" >&2
      die "$name exited during start-up (log: $RUN_DIR/$name.log)"
    fi
    if curl -fsS -o /dev/null "$ready_url" 2>/dev/null; then
      log "$name: ready (pid $pid, $ready_url)"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$RUN_DIR/$name.log" >&2
  die "$name did not become ready within 60 s (log: $RUN_DIR/$name.log)"
}

stop_one() {
  local name=$1 pid i
  if ! pid="$(live_pid "$name")"; then
    rm -f "$RUN_DIR/$name.pid"
    log "$name: not running"
    return 0
  fi
  kill -TERM "$pid"
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$RUN_DIR/$name.pid"
  log "$name: stopped"
}

[[ -x "$REPO_ROOT/.venv/bin/python" ]] || [[ "${1:-}" != up ]] \
  || die "no virtual environment at $REPO_ROOT/.venv: run 'make setup' first"

case "${1:-}" in
  up)
    for entry in "${SERVICES[@]}"; do
      IFS='|' read -r name module url <<<"$entry"
      start_one "$name" "$module" "$url"
    done
    log "gateway: http://127.0.0.1:$GATEWAY_PORT/docs"
    ;;
  down)
    # Gateway first: it stops taking requests before the workers go.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
      IFS='|' read -r name _ _ <<<"${SERVICES[$i]}"
      stop_one "$name"
    done
    ;;
  status)
    all=0
    for entry in "${SERVICES[@]}"; do
      IFS='|' read -r name _ url <<<"$entry"
      if pid="$(live_pid "$name")"; then
        printf '%-10s running  pid %-8s %s\n' "$name" "$pid" "$url"
      else
        printf '%-10s stopped\n' "$name"
        all=1
      fi
    done
    exit "$all"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
