#!/usr/bin/env bash
# The stack that `make test` and `make bench` run on: a second instance of stack.sh's
# Kafka, PostgreSQL and Redis, with its own state folder and ports. The system that
# `make up` runs (the default instance, .stack/ on 9092/5432/6379) keeps consuming its
# topics in its own consumer groups; on a shared broker it would answer the tests'
# requests too (a key rotated twice, a restore conflicting with itself).
#
#   test-stack.sh run CMD [ARG...]   start the instance empty (purge, then up), run CMD
#                                    with its X0_* variables, stop the instance; exits
#                                    with CMD's status. One run per checkout at a time:
#                                    a second waits for the first.
#   test-stack.sh up|down|purge|status|env|smoke
#                                    stack.sh's commands, on this instance (for running
#                                    pytest by hand: up, then eval "$(test-stack.sh env)")
#
# Environment knobs (all optional):
#   X0_TEST_STACK_DIR                   state folder     (default <repo>/.stack/test)
#   X0_TEST_STACK_KAFKA_PORT            broker port      (default 19092)
#   X0_TEST_STACK_KAFKA_CONTROLLER_PORT controller port  (default 19093)
#   X0_TEST_STACK_PG_PORT               PostgreSQL port  (default 15432)
#   X0_TEST_STACK_REDIS_PORT            Redis port       (default 16379)
#   X0_TEST_STACK_KAFKA_PLAINTEXT_PORT  development PLAINTEXT listener beside the mTLS one
#                                       (unset: none; make bench sets it for kafka_tls)
#   X0_TEST_STACK_KEEP=1                `run` leaves the instance running afterwards
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
STACK="$SCRIPT_DIR/stack.sh"

export X0_STACK_DIR="${X0_TEST_STACK_DIR:-$REPO_ROOT/.stack/test}"
export X0_STACK_KAFKA_PORT="${X0_TEST_STACK_KAFKA_PORT:-19092}"
export X0_STACK_KAFKA_CONTROLLER_PORT="${X0_TEST_STACK_KAFKA_CONTROLLER_PORT:-19093}"
export X0_STACK_PG_PORT="${X0_TEST_STACK_PG_PORT:-15432}"
export X0_STACK_REDIS_PORT="${X0_TEST_STACK_REDIS_PORT:-16379}"
export X0_STACK_KAFKA_PLAINTEXT_PORT="${X0_TEST_STACK_KAFKA_PLAINTEXT_PORT:-}"
# Beside the state folder, not in it: `purge` deletes the folder while the lock is held.
RUN_LOCK="$X0_STACK_DIR.lock"

log() { printf 'test-stack.sh: %s\n' "$*"; }

# The lock is fd 8. Everything started from here gets 8>&- so that no daemon (Kafka,
# PostgreSQL, Redis) and no leftover test process keeps it after this script ends.
take_run_lock() {
  mkdir -p "$(dirname "$RUN_LOCK")"
  exec 8>"$RUN_LOCK"
  if ! flock -n 8; then
    log "another test or bench run in this checkout holds $RUN_LOCK; waiting for it"
    flock 8
  fi
}

stop_instance() {
  if [[ "${X0_TEST_STACK_KEEP:-}" == 1 ]]; then
    log "left running (X0_TEST_STACK_KEEP=1); stop it with: $0 down"
    return 0
  fi
  "$STACK" down 8>&- | sed 's/^/  /' || true
}

cmd_run() {
  (($#)) || { log "run: no command given"; exit 2; }
  take_run_lock
  log "a fresh stack in $X0_STACK_DIR (ports $X0_STACK_KAFKA_PORT, $X0_STACK_KAFKA_CONTROLLER_PORT, $X0_STACK_PG_PORT, $X0_STACK_REDIS_PORT)"
  # Empty every run: no topic, consumer group, table or key of an earlier run is
  # there for a test to trip over. An interrupted run's daemons are stopped first.
  "$STACK" purge 8>&- >/dev/null
  trap stop_instance EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$STACK" up 8>&-
  eval "$("$STACK" env)"
  # The run started a local stack for this: testcontainers are not wanted as well.
  export X0_TEST_STACK="${X0_TEST_STACK:-local}"
  local rc=0
  "$@" 8>&- || rc=$?
  return "$rc"
}

case "${1:-}" in
  run)
    shift
    cmd_run "$@"
    ;;
  up | down | purge | status | env | smoke) exec "$STACK" "$@" ;;
  *)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
