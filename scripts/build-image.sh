#!/usr/bin/env bash
# Build Tocsin's image from the Dockerfile without a Docker engine and without a container
# registry, then run `tocsin --version` in it:
#   - a local base image stands in for python:3.11-slim-bookworm: Debian bookworm's minimal
#     root filesystem with its Python 3.11 (debootstrap, from Debian's packages), cached in
#     .cache/image/rootfs, committed as localhost/tocsin-base:bookworm;
#   - Debian's buildah builds the Dockerfile on it (vfs storage, chroot isolation), with this
#     machine's CA certificates mounted during the build so pip and uv reach the package index
#     as every other tool here does.
#
#   scripts/build-image.sh      needs root, `apt-get install buildah debootstrap`; prints the tag
#
# Environment: TOCSIN_IMAGE (localhost/tocsin:dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${TOCSIN_IMAGE:-localhost/tocsin:dev}"
BASE=localhost/tocsin-base:bookworm
CACHE="$ROOT/.cache/image"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

log() { echo "build-image: $*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || { log "ERROR: '$tool' not found (apt-get install $tool)"; exit 1; }
done
[[ $(id -u) == 0 ]] || { log "ERROR: debootstrap and buildah's vfs storage need root"; exit 1; }

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  if [[ ! -f "$CACHE/rootfs/.complete" ]]; then
    log "making a Debian bookworm root filesystem with Python 3.11 (about a minute)"
    rm -rf "$CACHE/rootfs"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase \
      --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
      bookworm "$CACHE/rootfs" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # As in the official python images: pip may install outside a virtualenv.
    rm -f "$CACHE"/rootfs/usr/lib/python3.*/EXTERNALLY-MANAGED
    rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb "$CACHE"/rootfs/var/lib/apt/lists/*
    touch "$CACHE/rootfs/.complete"
  fi
  log "committing $BASE"
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  cp -a "$CACHE/rootfs/." "$mnt/"
  rm -f "$mnt/.complete"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --cmd python3 "$ctr"
  buildah commit -q "$ctr" "$BASE" >/dev/null
  buildah rm "$ctr" >/dev/null
fi

log "building $IMAGE from the Dockerfile on $BASE"
cd "$ROOT"
mkdir -p "$CACHE"
previous="$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)"
buildah build --format docker --layers=false -q \
  --volume /etc/ssl/certs:/etc/ssl/certs:ro \
  --build-arg PYTHON_IMAGE="$BASE" -t "$IMAGE" . >"$CACHE/build.log" 2>&1 \
  || { tail -30 "$CACHE/build.log" >&2; exit 1; }
# vfs keeps whole copies: drop the image this one replaced, so rebuilds do not fill the disk.
if [[ -n "$previous" && "$previous" != "$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE")" ]]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi

ctr="$(buildah from -q "$IMAGE")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
log "in the image: $(buildah run "$ctr" -- id -u):$(buildah run "$ctr" -- id -g) $(buildah run "$ctr" -- tocsin --version)"
echo "$IMAGE"
