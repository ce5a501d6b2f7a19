#!/usr/bin/env bash
# Prints the path of a kustomize binary, building it once from the Go module proxy
# into the cache the local stack keeps Kafka's jars in (outside the repository):
#   ${X0_STACK_CACHE:-~/.cache/x0-stack}/kustomize-<version>/kustomize
# Later calls reuse it. About a minute on a fresh machine (Go's module downloads and
# the build); tests/deploy/test_k8s_overlays.py calls it. Needs the machine's Go.
#
#   deploy/k8s/kustomize.sh            print the path (building it if missing)
#   "$(deploy/k8s/kustomize.sh)" build deploy/k8s/overlays/production
set -euo pipefail

VERSION="${X0_KUSTOMIZE_VERSION:-v5.8.1}"
CACHE_ROOT="${X0_STACK_CACHE:-$HOME/.cache/x0-stack}"
DIR="$CACHE_ROOT/kustomize-$VERSION"
BIN="$DIR/kustomize"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { echo "kustomize.sh: go is not installed" >&2; exit 1; }
  echo "kustomize.sh: building sigs.k8s.io/kustomize/kustomize/v5@$VERSION into $DIR" >&2
  mkdir -p "$DIR"
  # Build into a temporary folder, then rename: a build cut short leaves no binary
  # that a later call would take for a finished one.
  tmp="$(mktemp -d "$DIR/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION" >&2
  mv "$tmp/kustomize" "$BIN"
fi
echo "$BIN"
