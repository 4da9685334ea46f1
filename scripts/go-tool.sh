#!/usr/bin/env bash
# Build a Go tool from the Go module proxy into .cache/bin/<name>-<version> unless present, and
# print its path. Shared by scripts/alertmanager.sh and scripts/helm.sh.
#
#   scripts/go-tool.sh NAME PACKAGE VERSION [BUILD_TAGS]
#
# BUILD_TAGS (optional, comma-separated) are passed to `go install -tags`.
# A version bump builds a new binary beside the old one; nothing is rebuilt otherwise.
set -euo pipefail

NAME="$1" PACKAGE="$2" VERSION="$3" TAGS="${4:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/$NAME-$VERSION"

log() { echo "$NAME: $*" >&2; }

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null 2>&1 || { log "ERROR: 'go' not found on PATH"; exit 1; }
  log "building $NAME $VERSION from the Go module proxy (minutes the first time)"
  mkdir -p "$BIN_DIR"
  # Build into a private GOBIN, then rename: an interrupted build never leaves a binary
  # that the next run would take as complete.
  work="$(mktemp -d "$BIN_DIR/.$NAME-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  CGO_ENABLED=0 GOBIN="$work" GOFLAGS=-buildvcs=false go install ${TAGS:+-tags "$TAGS"} \
    "$PACKAGE@$VERSION" >&2
  mv -f "$work/$NAME" "$BIN"
fi
echo "$BIN"
