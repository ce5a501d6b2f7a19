#!/usr/bin/env bash
# SPIRE for the local stack: the workload identities (X.509-SVIDs) of every x0 service,
# the Kafka broker and the ops tooling, in trust domain x0.local (docs/security.md,
# "Workload identity: SPIRE"). stack.sh calls it from up/down/status; by hand:
#
#   spire.sh build          build spire-server and spire-agent once into the cache
#   spire.sh up             server, agent, one entry per identity, the files writers
#   spire.sh down           stop them (the server's CA and datastore stay)
#   spire.sh status         one line per process; exit 0 only if all run
#   spire.sh restart-agent  stop the agent and start it again (tests: a restart must
#                           not break a running workload)
#   spire.sh env NAME       the variables a process needs to fetch NAME's SVID
#   spire.sh exec NAME CMD  run CMD as workload NAME (its group, see below)
#
# Binaries: SPIRE v1.13.3 is built from the Go module proxy (go get -tool ..., then go
# build; about 8 CPU-minutes, progress printed) and cached like Kafka's jars, in
# $X0_STACK_CACHE/spire-v<version>/ (default ~/.cache/x0-stack). Later runs reuse them.
#
# Server: sqlite3 datastore, join_token node attestation, its CA and keys on disk under
# <state>/spire/server. Agent: unix workload attestor, Workload API on
# <state>/spire/agent/api.sock (SPIFFE_ENDPOINT_SOCKET=unix://...). On every start the
# agent attests with a fresh one-time join token that the server maps to
# spiffe://x0.local/host/local, the parent of every workload entry.
#
# Telling the workloads apart: every process here runs as root, so unix:uid cannot.
# Each identity NAME has a system group x0-NAME (created by `up`) and its processes run
# with that group as their primary group (setpriv --regid; `spire.sh exec`, services.py,
# x0_common.testing.processes). Entry NAME selects unix:uid:<this uid> and
# unix:group:x0-NAME. On this single-user machine that is a label, not a boundary (root
# can take any group); in Kubernetes the SPIFFE CSI driver and the k8s attestor make it one.
#
# Files for what cannot speak the Workload API (the Kafka broker and Kafka's Java tools
# run as ops; later PostgreSQL, Redis): a writer per such identity fetches its SVID as
# that workload and keeps <state>/spire/identity/NAME/{cert.pem,key.pem,bundle.pem}
# current, the layout of the development PKI's <state>/identity (replaced atomically,
# file by file, only when they change). It re-fetches every TTL/6, so the files always
# hold an SVID with at least a third of its life left.
#
# Environment knobs (all optional):
#   X0_SPIRE_VERSION          SPIRE release to build        (default 1.13.3)
#   X0_STACK_SPIRE_SVID_TTL   X.509-SVID lifetime, seconds  (default 3600)
#   X0_STACK_DIR, X0_STACK_CACHE   as for stack.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
STACK_DIR="${X0_STACK_DIR:-$REPO_ROOT/.stack}"
CACHE_ROOT="${X0_STACK_CACHE:-$HOME/.cache/x0-stack}"

SPIRE_VERSION="${X0_SPIRE_VERSION:-1.13.3}"
SPIRE_BIN="$CACHE_ROOT/spire-v$SPIRE_VERSION"
SVID_TTL="${X0_STACK_SPIRE_SVID_TTL:-3600}"
TRUST_DOMAIN=x0.local
HOST_ID="spiffe://$TRUST_DOMAIN/host/local"
HOST=127.0.0.1

# Every identity: the four services, the Kafka broker, the ops tooling (topics, ACLs).
IDENTITIES=(gateway crypto rag telemetry kafka ops)
# Those that get files instead of the Workload API.
FILE_IDENTITIES=(kafka ops)

SPIRE_DIR="$STACK_DIR/spire"
SERVER_DIR="$SPIRE_DIR/server"
AGENT_DIR="$SPIRE_DIR/agent"
IDENTITY_DIR="$SPIRE_DIR/identity"
# Unix socket paths are limited to 107 bytes: a deep checkout puts them under /tmp.
SOCK_DIR="$SPIRE_DIR"
if ((${#SOCK_DIR} > 80)); then
  SOCK_DIR="/tmp/x0-spire-$(printf '%s' "$STACK_DIR" | cksum | cut -d' ' -f1)"
fi
# The server's admin API (entries, minting) in a folder only its owner enters; the agent's
# Workload API is for every local process (the attestor tells them apart).
SERVER_SOCK="$SOCK_DIR/server/api.sock"
AGENT_SOCK="$SOCK_DIR/api.sock"

log() { printf '%s\n' "$*"; }
die() { printf 'spire.sh: error: %s\n' "$*" >&2; exit 1; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# The pid in file $1 when that process is alive and its command line contains $2.
live_pid_from() {
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(head -n1 "$1" 2>/dev/null | tr -dc '0-9')"
  pid_alive "$pid" || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$2"* ]] || return 1
  printf '%s\n' "$pid"
}

stop_pid_file() {
  local file=$1 needle=$2 name=$3 pid i
  if ! pid="$(live_pid_from "$file" "$needle")"; then
    rm -f "$file"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping pid $pid"
  # Each was started by setsid: its whole group goes (a writer's sleep too).
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$file"
}

show_log() {
  [[ -s "$1" ]] || return 0
  printf -- '----- last lines of %s -----\n' "$1" >&2
  tail -n 30 "$1" >&2
}

# ------------------------------------------------------------------ build ----

spire_build() {
  [[ -x "$SPIRE_BIN/spire-server" && -x "$SPIRE_BIN/spire-agent" ]] && return 0
  command -v go >/dev/null ||
    die "Go is needed once to build SPIRE $SPIRE_VERSION (https://go.dev/dl, or apt-get install golang)"
  mkdir -p "$CACHE_ROOT"
  local work start=$SECONDS pid
  work="$(mktemp -d "$CACHE_ROOT/spire-build.XXXXXX")"
  log "spire: building spire-server and spire-agent v$SPIRE_VERSION from the Go module proxy"
  log "spire:   once per machine (about 8 CPU-minutes), cached in $SPIRE_BIN"
  (
    cd "$work"
    go mod init x0.local/spire-build
    go get -tool "github.com/spiffe/spire/cmd/spire-server@v$SPIRE_VERSION"
    go get -tool "github.com/spiffe/spire/cmd/spire-agent@v$SPIRE_VERSION"
    echo "x0: modules fetched"
    # -v names each package as it is compiled: the progress below counts them.
    go build -v -o bin/ github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
  ) >"$work/build.log" 2>&1 9>&- &
  pid=$!
  while pid_alive "$pid"; do
    sleep 15
    pid_alive "$pid" || break
    if grep -q '^x0: modules fetched' "$work/build.log"; then
      log "spire:   compiling, $((SECONDS - start))s, $(grep -c -v -e '^go: ' -e '^x0: ' "$work/build.log") packages so far"
    else
      log "spire:   fetching modules, $((SECONDS - start))s"
    fi
  done
  if ! wait "$pid"; then
    show_log "$work/build.log"
    die "spire: the build failed (log above; $work kept)"
  fi
  # Published at once: an interrupted build never leaves half a cache.
  rm -rf "$SPIRE_BIN"
  mv "$work/bin" "$SPIRE_BIN"
  rm -rf "$work"
  log "spire: built in $((SECONDS - start))s: $("$SPIRE_BIN/spire-server" --version 2>&1)"
}

# ----------------------------------------------------------------- groups ----

group_of() { printf 'x0-%s\n' "$1"; }

ensure_groups() {
  local name group
  for name in "${IDENTITIES[@]}"; do
    group="$(group_of "$name")"
    getent group "$group" >/dev/null && continue
    [[ $EUID -eq 0 ]] || die "group $group is missing: run 'groupadd --system $group' as root (or stack.sh up as root)"
    # Another stack on this machine may make it at the same moment.
    groupadd --system "$group" 2>/dev/null || getent group "$group" >/dev/null ||
      die "groupadd --system $group failed"
    log "spire: created system group $group"
  done
}

# Runs "$@" as workload $1: primary group x0-$1, no supplementary groups.
as_workload() {
  local name=$1
  shift
  exec setpriv --regid "$(group_of "$name")" --clear-groups -- "$@"
}

# ----------------------------------------------------------------- server ----

server() { "$SPIRE_BIN/spire-server" "$@"; }
server_pid() { live_pid_from "$SERVER_DIR/server.pid" "$SERVER_DIR/server.conf"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_write_config() {
  local port=$1
  mkdir -p "$SERVER_DIR/data" "$(dirname "$SERVER_SOCK")"
  chmod 700 "$SERVER_DIR" "$(dirname "$SERVER_SOCK")"
  cat >"$SERVER_DIR/server.conf" <<EOF
# Generated by deploy/local-stack/spire.sh on every start; edit the script, not this.
server {
  bind_address = "$HOST"
  bind_port = "$port"
  socket_path = "$SERVER_SOCK"
  trust_domain = "$TRUST_DOMAIN"
  data_dir = "$SERVER_DIR/data"
  log_level = "INFO"
  log_file = "$SERVER_DIR/server.log"
  # The CA outlives many SVIDs; SPIRE rotates it at half its life.
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "$SERVER_DIR/data/datastore.sqlite3"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = "$SERVER_DIR/data/keys.json"
    }
  }
}
EOF
}

server_up() {
  local pid port i
  if pid="$(server_pid)"; then
    log "spire-server: already running (pid $pid)"
    return 0
  fi
  # The agent API's TCP port: any free one (many stacks share this machine), kept in a
  # file for the agent's configuration.
  port="$(free_port)"
  server_write_config "$port"
  printf '%s\n' "$port" >"$SERVER_DIR/port"
  rm -f "$SERVER_SOCK"
  log "spire-server: starting ($HOST:$port, trust domain $TRUST_DOMAIN)"
  setsid "$SPIRE_BIN/spire-server" run -config "$SERVER_DIR/server.conf" \
    >"$SERVER_DIR/server.out" 2>&1 </dev/null 9>&- 8>&- &
  printf '%s\n' "$!" >"$SERVER_DIR/server.pid"
  for ((i = 0; i < 300; i++)); do
    server healthcheck -socketPath "$SERVER_SOCK" >/dev/null 2>&1 && break
    if ! pid_alive "$(cat "$SERVER_DIR/server.pid")"; then
      show_log "$SERVER_DIR/server.out"
      show_log "$SERVER_DIR/server.log"
      die "spire-server exited during start-up"
    fi
    sleep 0.2
  done
  server healthcheck -socketPath "$SERVER_SOCK" >/dev/null 2>&1 ||
    { show_log "$SERVER_DIR/server.log"; die "spire-server: not healthy after 60s"; }
  log "spire-server: ready (pid $(server_pid))"
}

# One entry per identity, under the agent's alias; created or updated in place, so a
# changed TTL or group applies on the next `up` without a purge.
register_entries() {
  local name verb
  for name in "${IDENTITIES[@]}"; do
    local args=(
      -entryID "x0-$name"
      -parentID "$HOST_ID"
      -spiffeID "spiffe://$TRUST_DOMAIN/$name"
      -selector "unix:uid:$EUID"
      -selector "unix:group:$(group_of "$name")"
      # The first DNS name becomes the subject CN: the principal Kafka's mapping rules
      # and PostgreSQL's pg_ident see.
      -dns "$name.$TRUST_DOMAIN"
      -x509SVIDTTL "$SVID_TTL"
    )
    # Clients dial the local broker by name; its certificate must carry it.
    [[ "$name" != kafka ]] || args+=(-dns localhost)
    if server entry show -socketPath "$SERVER_SOCK" -entryID "x0-$name" >/dev/null 2>&1; then
      verb=update
    else
      verb=create
    fi
    server entry "$verb" -socketPath "$SERVER_SOCK" "${args[@]}" >"$SPIRE_DIR/entry.out" 2>&1 ||
      { show_log "$SPIRE_DIR/entry.out"; die "spire: entry $verb x0-$name failed"; }
  done
  log "spire: entries ${IDENTITIES[*]} (spiffe://$TRUST_DOMAIN/<name>, SVID TTL ${SVID_TTL}s)"
}

# ------------------------------------------------------------------ agent ----

agent_pid() { live_pid_from "$AGENT_DIR/agent.pid" "$AGENT_DIR/agent.conf"; }

agent_up() {
  local pid i token
  if pid="$(agent_pid)"; then
    log "spire-agent: already running (pid $pid)"
    return 0
  fi
  # A fresh node every start: a one-time join token (kept in the 0600 config, never on a
  # command line), and no state of an earlier agent.
  rm -rf "$AGENT_DIR"
  mkdir -p "$AGENT_DIR/data"
  chmod 700 "$AGENT_DIR"
  server bundle show -socketPath "$SERVER_SOCK" >"$AGENT_DIR/bootstrap.pem"
  # The previous agent's alias entry goes with it (one per start would pile up).
  local old
  for old in $(server entry show -socketPath "$SERVER_SOCK" -spiffeID "$HOST_ID" 2>/dev/null | awk '/^Entry ID/ {print $4}'); do
    server entry delete -socketPath "$SERVER_SOCK" -entryID "$old" >/dev/null
  done
  token="$(server token generate -socketPath "$SERVER_SOCK" -spiffeID "$HOST_ID" -ttl 600 | awk '/^Token:/ {print $2}')"
  [[ -n "$token" ]] || die "spire: the server gave no join token"
  (
    umask 077
    cat >"$AGENT_DIR/agent.conf" <<EOF
# Generated by deploy/local-stack/spire.sh on every agent start.
agent {
  data_dir = "$AGENT_DIR/data"
  log_level = "INFO"
  log_file = "$AGENT_DIR/agent.log"
  server_address = "$HOST"
  server_port = "$(cat "$SERVER_DIR/port")"
  socket_path = "$AGENT_SOCK"
  trust_bundle_path = "$AGENT_DIR/bootstrap.pem"
  trust_domain = "$TRUST_DOMAIN"
  join_token = "$token"
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
EOF
  )
  rm -f "$AGENT_SOCK"
  log "spire-agent: starting (Workload API unix://$AGENT_SOCK)"
  setsid "$SPIRE_BIN/spire-agent" run -config "$AGENT_DIR/agent.conf" \
    >"$AGENT_DIR/agent.out" 2>&1 </dev/null 9>&- 8>&- &
  printf '%s\n' "$!" >"$AGENT_DIR/agent.pid"
  for ((i = 0; i < 300; i++)); do
    "$SPIRE_BIN/spire-agent" healthcheck -socketPath "$AGENT_SOCK" >/dev/null 2>&1 && break
    if ! pid_alive "$(cat "$AGENT_DIR/agent.pid")"; then
      show_log "$AGENT_DIR/agent.out"
      show_log "$AGENT_DIR/agent.log"
      die "spire-agent exited during start-up"
    fi
    sleep 0.2
  done
  "$SPIRE_BIN/spire-agent" healthcheck -socketPath "$AGENT_SOCK" >/dev/null 2>&1 ||
    { show_log "$AGENT_DIR/agent.log"; die "spire-agent: not healthy after 60s"; }
  # The socket is for every local workload; the attestor tells them apart.
  chmod 755 "$SOCK_DIR"
  log "spire-agent: ready (pid $(agent_pid))"
}

agent_down() { stop_pid_file "$AGENT_DIR/agent.pid" "$AGENT_DIR/agent.conf" spire-agent; }

# --------------------------------------------------------------- writers ----

writer_pid_file() { printf '%s/writer-%s.pid\n' "$SPIRE_DIR" "$1"; }
writer_pid() { live_pid_from "$(writer_pid_file "$1")" "spire.sh write-loop $1"; }

# Writes NAME's SVID into $IDENTITY_DIR/NAME once; fails when the agent gives none.
write_once() {
  local name=$1 dir="$IDENTITY_DIR/$1" tmp f
  tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
  if ! "$SPIRE_BIN/spire-agent" api fetch x509 -socketPath "$AGENT_SOCK" -timeout 5s \
      -write "$tmp" >"$tmp/out" 2>&1; then
    rm -rf "$tmp"
    return 1
  fi
  mv "$tmp/svid.0.pem" "$tmp/cert.pem"
  mv "$tmp/svid.0.key" "$tmp/key.pem"
  mv "$tmp/bundle.0.pem" "$tmp/bundle.pem"
  # The key first: a reader that sees the new certificate finds its key already there
  # (x0_common.identity retries a pair caught half-way).
  for f in key.pem cert.pem bundle.pem; do
    chmod 600 "$tmp/$f"
    cmp -s "$tmp/$f" "$dir/$f" || mv -f "$tmp/$f" "$dir/$f"
  done
  rm -rf "$tmp"
}

write_loop() {
  local name=$1 every=$((SVID_TTL / 6))
  ((every >= 2)) || every=2
  ((every <= 600)) || every=600
  while true; do
    if write_once "$name"; then
      sleep "$every"
    else
      sleep 2
    fi
  done
}

writers_up() {
  local name pid i
  for name in "${FILE_IDENTITIES[@]}"; do
    mkdir -p "$IDENTITY_DIR/$name"
    chmod 700 "$IDENTITY_DIR/$name"
    if pid="$(writer_pid "$name")"; then
      log "spire: $name files writer already running (pid $pid)"
      continue
    fi
    setsid setpriv --regid "$(group_of "$name")" --clear-groups -- \
      "$SCRIPT_DIR/spire.sh" write-loop "$name" >"$SPIRE_DIR/writer-$name.log" 2>&1 </dev/null 9>&- 8>&- &
    printf '%s\n' "$!" >"$(writer_pid_file "$name")"
    # Ready when the three files hold this SPIRE's SVID (the first fetch after a start
    # can wait for the agent's first sync).
    for ((i = 0; i < 150; i++)); do
      [[ -s "$IDENTITY_DIR/$name/cert.pem" && -s "$IDENTITY_DIR/$name/bundle.pem" ]] &&
        cmp -s <(server bundle show -socketPath "$SERVER_SOCK") "$IDENTITY_DIR/$name/bundle.pem" && break
      sleep 0.2
    done
    ((i < 150)) || { show_log "$SPIRE_DIR/writer-$name.log"; die "spire: no SVID files for $name after 30s"; }
    log "spire: $name SVID files in $IDENTITY_DIR/$name (cert.pem, key.pem, bundle.pem; refreshed every $((SVID_TTL / 6 < 2 ? 2 : SVID_TTL / 6 > 600 ? 600 : SVID_TTL / 6))s)"
  done
}

writers_down() {
  local name
  for name in "${FILE_IDENTITIES[@]}"; do
    stop_pid_file "$(writer_pid_file "$name")" "spire.sh write-loop $name" "spire $name files writer"
  done
}

# ------------------------------------------------------------------- main ----

cmd_up() {
  spire_build
  ensure_groups
  mkdir -p "$SPIRE_DIR"
  server_up
  register_entries
  agent_up
  writers_up
}

cmd_down() {
  writers_down
  agent_down
  stop_pid_file "$SERVER_DIR/server.pid" "$SERVER_DIR/server.conf" spire-server
}

cmd_status() {
  local rc=0 pid name
  if pid="$(server_pid)"; then
    printf '%-9s running  pid %-8s %s:%s (trust domain %s)\n' spire-srv "$pid" "$HOST" "$(cat "$SERVER_DIR/port")" "$TRUST_DOMAIN"
  else
    printf '%-9s stopped\n' spire-srv
    rc=1
  fi
  if pid="$(agent_pid)"; then
    printf '%-9s running  pid %-8s unix://%s\n' spire-agt "$pid" "$AGENT_SOCK"
  else
    printf '%-9s stopped\n' spire-agt
    rc=1
  fi
  for name in "${FILE_IDENTITIES[@]}"; do
    if pid="$(writer_pid "$name")"; then
      printf '%-9s running  pid %-8s %s\n' "svid-$name" "$pid" "$IDENTITY_DIR/$name"
    else
      printf '%-9s stopped\n' "svid-$name"
      rc=1
    fi
  done
  return "$rc"
}

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    build) spire_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    restart-agent)
      agent_down
      agent_up
      ;;
    env)
      [[ " ${IDENTITIES[*]} " == *" ${1:-} "* ]] || die "env: one of ${IDENTITIES[*]}"
      printf 'export SPIFFE_ENDPOINT_SOCKET=unix://%s\n' "$AGENT_SOCK"
      printf 'export X0_SPIRE_GROUP=%s\n' "$(group_of "$1")"
      ;;
    exec)
      [[ " ${IDENTITIES[*]} " == *" ${1:-} "* ]] || die "exec: one of ${IDENTITIES[*]}"
      SPIFFE_ENDPOINT_SOCKET="unix://$AGENT_SOCK" as_workload "$@"
      ;;
    write-loop) write_loop "$1" ;;
    server | agent)
      # The CLIs against this stack's sockets, e.g. spire.sh server entry show.
      local sub=$1
      shift
      if [[ "$cmd" == server ]]; then
        exec "$SPIRE_BIN/spire-server" "$sub" "${@:1:1}" -socketPath "$SERVER_SOCK" "${@:2}"
      fi
      exec "$SPIRE_BIN/spire-agent" "$sub" "${@:1:1}" -socketPath "$AGENT_SOCK" "${@:2}"
      ;;
    *)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
