#!/usr/bin/env bash
# Builds the x0 service images with buildah, from deploy/docker/Dockerfile, on a machine
# with no Docker engine and no registry (make images): the local bases of bases.sh
# stand in for python:3.11-slim and the uv image.
#
#   deploy/images/build.sh                  all four: gateway crypto rag telemetry
#   deploy/images/build.sh rag gateway      only these
#   deploy/images/build.sh --sizes          print the size table only (built images)
#
# Each image is tagged localhost/x0tta6bl4/<service>:<version> (the service's version in
# its pyproject.toml, as deploy/k8s names it) with the OCI labels source, revision (the
# commit, "-dirty" when the tree has changes) and version. --format docker keeps the
# HEALTHCHECK (the OCI image format has no field for it). Layers are cached, so a
# second build only redoes what changed. Needs root, buildah and debootstrap.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
DOCKERFILE="$REPO_ROOT/deploy/docker/Dockerfile"
ALL=(gateway crypto rag telemetry)
UV_VERSION="$(sed -n 's/^ARG UV_VERSION=//p' "$DOCKERFILE")"
# The host's CA bundle, mounted over the image's during the build's RUN steps (not kept
# in the image): PyPI is reached the way the host reaches it, through a proxy whose CA
# only the host trusts where there is one.
CA_BUNDLE="${X0_IMAGES_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

version_of() { sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/services/$1/pyproject.toml" | head -n1; }
image_of() { printf 'localhost/x0tta6bl4/%s:%s' "$1" "$(version_of "$1")"; }

# One line per image: name, size, and what dominates it (the venv's largest packages).
sizes() {
  local service image ctr mnt
  # size: what buildah stores (its layers); the parts: files as installed (du).
  printf '%-36s %8s  %s\n' image size "installed MB: base, venv and its largest packages"
  for service in "${ALL[@]}"; do
    image="$(image_of "$service")"
    buildah inspect --type image "$image" >/dev/null 2>&1 || continue
    ctr="$(buildah from --pull-never "$image")"
    mnt="$(buildah mount "$ctr")"
    local total base venv top
    total="$(du -sm --apparent-size "$mnt" | cut -f1)"
    venv="$(du -sm --apparent-size "$mnt/app/.venv" | cut -f1)"
    base=$((total - venv))
    top="$(cd "$mnt/app/.venv/lib/python3.11/site-packages" \
      && du -sm --apparent-size -- */ | sort -rn | head -n 4 \
      | awk '{sub("/$", "", $2); printf "%s %s, ", $2, $1}')"
    printf '%-36s %8s  %s: base %s, venv %s (%s)\n' "$image" \
      "$(buildah images --format '{{.Size}}' "$image")" "$total" "$base" "$venv" "${top%, }"
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
  done
}

if [[ "${1:-}" == --sizes ]]; then
  sizes
  exit 0
fi

services=("$@")
[[ ${#services[@]} -gt 0 ]] || services=("${ALL[@]}")
for service in "${services[@]}"; do
  [[ " ${ALL[*]} " == *" $service "* ]] || die "unknown service $service (one of: ${ALL[*]})"
done

"$SCRIPT_DIR/bases.sh"

revision="$(git -C "$REPO_ROOT" rev-parse HEAD)"
[[ -z "$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no)" ]] || revision="$revision-dirty"
for service in "${services[@]}"; do
  image="$(image_of "$service")"
  log "$image: building (revision $revision)"
  started=$SECONDS
  nice -n "${X0_IMAGES_NICE:-10}" buildah bud --isolation chroot --format docker --layers \
    --file "$DOCKERFILE" \
    --build-arg SERVICE="$service" \
    --build-arg PYTHON_IMAGE=localhost/python:3.11-bookworm \
    --build-arg UV_IMAGE="localhost/uv:$UV_VERSION" \
    --build-arg BUILD_PACKAGES="build-essential python3.11-dev" \
    --build-arg REVISION="$revision" \
    --volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
    --build-arg VERSION="$(version_of "$service")" \
    --tag "$image" \
    "$REPO_ROOT" >&2
  log "$image: built in $((SECONDS - started)) s"
done
sizes
