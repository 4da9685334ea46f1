#!/usr/bin/env bash
# Installs Debian's buildah and debootstrap when missing, so tests/deploy/test_image_build.py can
# build the real Dockerfile on this machine (no Docker engine needed). Where that is impossible
# (not root, no apt-get, no Debian mirror) it says so and exits 0: the image test then skips,
# naming the reason, and every other deployment check still runs.
set -uo pipefail
if command -v buildah >/dev/null && command -v debootstrap >/dev/null; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "image-tools: buildah/debootstrap missing and not installable here (need root and apt-get); the image build test will skip"
  exit 0
fi
echo "image-tools: installing buildah and debootstrap from Debian"
if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null); then
  echo "image-tools: apt-get failed; the image build test will skip"
fi
exit 0
