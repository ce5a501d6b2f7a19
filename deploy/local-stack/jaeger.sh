#!/usr/bin/env bash
# Prints the path of a Jaeger v2 binary (`jaeger`, module github.com/jaegertracing/
# jaeger, cmd/jaeger), building it once from the Go module proxy into the cache the
# local stack keeps Kafka's jars in (outside the repository):
#   ${X0_STACK_CACHE:-~/.cache/x0-stack}/jaeger-<version>/jaeger
# Later calls reuse it. The first build downloads the collector's modules and compiles
# them: several minutes on two cores (its progress goes to stderr). Needs the machine's
# Go. make up (services.py) and tests/system/test_jaeger.py call it.
#
#   deploy/local-stack/jaeger.sh            print the path (building it if missing)
#   "$(deploy/local-stack/jaeger.sh)"       Jaeger with no config: in-memory storage,
#                                           OTLP on 4317/4318, UI and query API on 16686
set -euo pipefail

VERSION="${X0_JAEGER_VERSION:-v1.75.0}"
CACHE_ROOT="${X0_STACK_CACHE:-$HOME/.cache/x0-stack}"
DIR="$CACHE_ROOT/jaeger-$VERSION"
BIN="$DIR/jaeger"
MODULE=github.com/jaegertracing/jaeger

log() { printf 'jaeger.sh: %s\n' "$*" >&2; }

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { log "error: go is not installed"; exit 1; }
  log "building $MODULE/cmd/jaeger@$VERSION into $DIR (once; several minutes on a fresh machine)"
  mkdir -p "$DIR"
  # Build in a temporary module, then rename: a build cut short leaves no binary that
  # a later call would take for a finished one.
  tmp="$(mktemp -d "$DIR/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  started=$SECONDS
  cd "$tmp"
  go mod init x0/jaeger-build >/dev/null 2>&1
  log "go get -tool $MODULE/cmd/jaeger@$VERSION (module downloads)"
  GOFLAGS=-buildvcs=false go get -tool "$MODULE/cmd/jaeger@$VERSION" 2>&1 \
    | grep -v '^go: \(downloading\|added\|upgraded\) ' >&2 || true
  go list -m "$MODULE" >/dev/null || { log "error: go get failed"; exit 1; }
  log "modules fetched after $((SECONDS - started)) s; go build (the long part)"
  GOFLAGS=-buildvcs=false nice -n "${X0_JAEGER_NICE:-10}" \
    go build -trimpath -ldflags='-s -w' -o "$tmp/jaeger" "$MODULE/cmd/jaeger" >&2
  mv "$tmp/jaeger" "$BIN"
  log "built in $((SECONDS - started)) s: $BIN"
fi
echo "$BIN"
