#!/usr/bin/env bash
# The x0 services as background processes on this machine (no Docker), beside
# the stack that stack.sh runs.
#
#   services.sh up       start every service that is not running, wait until ready
#   services.sh down     stop them (SIGTERM, then SIGKILL after 20 s)
#   services.sh status   one line per service; exit 0 only if all run
#
# Beside the four x0 services it runs Prometheus (127.0.0.1:9090, deploy/prometheus),
# Alertmanager (127.0.0.1:9095, deploy/alertmanager) and the PostgreSQL and Redis
# exporters, from the Debian packages stack.sh installs, so the alert rules are live
# wherever the system runs.
# Logs (JSON lines) go to .stack/services/<name>.log, pids to <name>.pid.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${X0_STACK_DIR:-$REPO_ROOT/.stack}/services"
GATEWAY_PORT="${X0_GATEWAY_PORT:-8000}"
CRYPTO_PORT="${X0_CRYPTO_PORT:-8001}"
RAG_PORT="${X0_RAG_PORT:-8002}"
TELEMETRY_PORT="${X0_TELEMETRY_PORT:-8003}"
STATE_DIR="${X0_STACK_DIR:-$REPO_ROOT/.stack}"
PYTHON="$REPO_ROOT/.venv/bin/python"
# The ports deploy/prometheus/prometheus.yml scrapes and alerts to.
PROMETHEUS_ADDRESS=127.0.0.1:9090
ALERTMANAGER_ADDRESS=127.0.0.1:9095

# name|readiness URL|command. The x0 services first, then what watches them.
SERVICES=(
  "crypto|http://127.0.0.1:$CRYPTO_PORT/health/ready|$PYTHON -m x0_crypto"
  "rag|http://127.0.0.1:$RAG_PORT/health/ready|$PYTHON -m x0_rag"
  "telemetry|http://127.0.0.1:$TELEMETRY_PORT/health/ready|$PYTHON -m x0_telemetry"
  "gateway|http://127.0.0.1:$GATEWAY_PORT/health/ready|$PYTHON -m x0_gateway"
  # --cluster.listen-address= turns off clustering (and its port 9094).
  "alertmanager|http://$ALERTMANAGER_ADDRESS/-/ready|prometheus-alertmanager --config.file=$REPO_ROOT/deploy/alertmanager/alertmanager.yml --storage.path=$STATE_DIR/alertmanager --web.listen-address=$ALERTMANAGER_ADDRESS --cluster.listen-address="
  # The stack's exporters, on the ports deploy/prometheus/prometheus.yml scrapes.
  "postgres-exporter|http://127.0.0.1:9187/metrics|env DATA_SOURCE_NAME=${X0_POSTGRES__DSN:-postgresql://x0:x0@127.0.0.1:5432/x0}?sslmode=disable prometheus-postgres-exporter --web.listen-address=127.0.0.1:9187"
  "redis-exporter|http://127.0.0.1:9121/metrics|prometheus-redis-exporter --redis.addr=${X0_REDIS__URL:-redis://127.0.0.1:6379/0} --web.listen-address=127.0.0.1:9121"
  "prometheus|http://$PROMETHEUS_ADDRESS/-/ready|prometheus --config.file=$REPO_ROOT/deploy/prometheus/prometheus.yml --storage.tsdb.path=$STATE_DIR/prometheus --web.listen-address=$PROMETHEUS_ADDRESS"
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
  local name=$1 ready_url=$2 cmdline=$3 pid i argv
  if pid="$(live_pid "$name")"; then
    log "$name: already running (pid $pid)"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  read -r -a argv <<<"$cmdline"
  command -v "${argv[0]}" >/dev/null || die "$name: ${argv[0]} is not installed (deploy/local-stack/stack.sh up installs it)"
  (
    cd "$REPO_ROOT"
    # Thread counts on purpose: BLAS and torch would otherwise fight over the cores.
    OPENBLAS_NUM_THREADS=1 X0_GATEWAY_PORT="$GATEWAY_PORT" X0_CRYPTO_PORT="$CRYPTO_PORT" X0_RAG_PORT="$RAG_PORT" \
      X0_TELEMETRY_PORT="$TELEMETRY_PORT" nohup "${argv[@]}" >>"$RUN_DIR/$name.log" 2>&1 &
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
      IFS='|' read -r name url command <<<"$entry"
      start_one "$name" "$url" "$command"
    done
    log "gateway: http://127.0.0.1:$GATEWAY_PORT/docs"
    log "prometheus: http://$PROMETHEUS_ADDRESS/alerts (rules from deploy/prometheus/rules)"
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
      IFS='|' read -r name url _ <<<"$entry"
      if pid="$(live_pid "$name")"; then
        printf '%-18s running  pid %-8s %s\n' "$name" "$pid" "$url"
      else
        printf '%-18s stopped\n' "$name"
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
