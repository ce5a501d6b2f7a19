#!/usr/bin/env bash
# Makes the local base images deploy/docker/Dockerfile builds from on a machine with
# no registry (buildah's storage keeps them; each is made once, when missing):
#
#   localhost/debian-base:bookworm    debootstrap --variant=minbase bookworm, committed
#                                     from scratch (~30 s, the Debian mirror apt uses)
#   localhost/python:3.11-bookworm    that base + Debian's python3.11, linked where
#                                     python:3.11-slim has it (/usr/local/bin/python3.11)
#   localhost/uv:<UV_VERSION>         scratch + /uv from the PyPI wheel uv==<UV_VERSION>,
#                                     where ghcr.io/astral-sh/uv has it
#
#   deploy/images/bases.sh            make what is missing
#   deploy/images/bases.sh --rebuild  make all three again
#
# Needs root; installs buildah and debootstrap with apt-get when they are missing.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SUITE=bookworm
MIRROR="${X0_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The uv that wrote uv.lock: the Dockerfile's UV_VERSION default.
UV_VERSION="$(sed -n 's/^ARG UV_VERSION=//p' "$REPO_ROOT/deploy/docker/Dockerfile")"
DEBIAN_IMAGE=localhost/debian-base:$SUITE
PYTHON_IMAGE=localhost/python:3.11-$SUITE
UV_IMAGE=localhost/uv:$UV_VERSION


log() { printf 'bases.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (debootstrap, buildah's storage)"
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || die "buildah or debootstrap is missing and there is no apt-get here"
  log "installing buildah and debootstrap with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null
fi
rebuild=0
[[ "${1:-}" == --rebuild ]] && rebuild=1

have() { [[ $rebuild -eq 0 ]] && buildah inspect --type image "$1" >/dev/null 2>&1; }

work="$(mktemp -d /var/tmp/x0-bases.XXXXXX)"
containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if have "$DEBIAN_IMAGE"; then
  log "$DEBIAN_IMAGE: present"
else
  log "$DEBIAN_IMAGE: debootstrap --variant=minbase $SUITE from $MIRROR"
  started=$SECONDS
  nice -n 19 debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # What an image needs no more: apt's downloaded packages and lists, docs and man pages.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/*
  # The security updates too, as the public Debian images have them.
  cat >"$work/rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
  ctr="$(buildah from scratch)"; containers+=("$ctr")
  mnt="$(buildah mount "$ctr")"
  cp -a "$work/rootfs/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.description="debootstrap --variant=minbase $SUITE" "$ctr"
  buildah commit --quiet --rm "$ctr" "$DEBIAN_IMAGE" >/dev/null; containers=()
  log "$DEBIAN_IMAGE: committed in $((SECONDS - started)) s"
fi

if have "$PYTHON_IMAGE"; then
  log "$PYTHON_IMAGE: present"
else
  log "$PYTHON_IMAGE: Debian's python3.11 on $DEBIAN_IMAGE"
  ctr="$(buildah from "$DEBIAN_IMAGE")"; containers+=("$ctr")
  # Only what python:3.11-slim holds beside the interpreter: CA certificates (TLS to
  # PostgreSQL, Kafka) and tzdata.
  buildah run --isolation chroot "$ctr" -- sh -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get upgrade -y -qq
    apt-get install -y -qq --no-install-recommends python3.11 ca-certificates tzdata
    ln -s /usr/bin/python3.11 /usr/local/bin/python3.11
    ln -s /usr/bin/python3.11 /usr/local/bin/python3
    ln -s /usr/bin/python3.11 /usr/local/bin/python
    apt-get clean
    rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*' >"$work/python.log" 2>&1 \
    || { tail -n 30 "$work/python.log" >&2; die "installing python3.11 failed"; }
  buildah config --cmd /usr/local/bin/python3.11 \
    --label org.opencontainers.image.description="Debian $SUITE python3.11" "$ctr"
  buildah commit --quiet --rm "$ctr" "$PYTHON_IMAGE" >/dev/null; containers=()
  log "$PYTHON_IMAGE: committed"
fi

if have "$UV_IMAGE"; then
  log "$UV_IMAGE: present"
else
  log "$UV_IMAGE: uv==$UV_VERSION from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary :all: \
    --platform manylinux_2_17_x86_64 --python-version 3.11 --dest "$work/uv" "uv==$UV_VERSION"
  (cd "$work/uv" && python3 -m zipfile -e uv-*.whl extracted)
  binary="$(find "$work/uv/extracted" -path '*/scripts/uv' -type f)"
  [[ -n "$binary" ]] || die "no scripts/uv in the uv wheel"
  ctr="$(buildah from scratch)"; containers+=("$ctr")
  buildah copy --chmod 0755 "$ctr" "$binary" /uv >/dev/null
  buildah config --entrypoint '["/uv"]' \
    --label org.opencontainers.image.description="uv $UV_VERSION from PyPI" "$ctr"
  buildah commit --quiet --rm "$ctr" "$UV_IMAGE" >/dev/null; containers=()
  log "$UV_IMAGE: committed"
fi
