#!/usr/bin/env bash
# Build a real Prometheus Alertmanager from the Go module proxy for the end-to-end tests.
#
#   scripts/alertmanager.sh        build .cache/bin/alertmanager-<version> unless present; print its path
#
# v0.31.1 is the newest release whose module zip carries its web UI assets (committed as
# generated Go code); from v0.32 on the UI is embedded from `ui/app/dist`, a build output
# that is not in the module zip, so `go install` of those versions fails.
# A version bump builds a new binary beside the old one; nothing is rebuilt otherwise.
#
# Environment: TOCSIN_ALERTMANAGER_VERSION (v0.31.1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${TOCSIN_ALERTMANAGER_VERSION:-v0.31.1}"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/alertmanager-$VERSION"

log() { echo "alertmanager: $*" >&2; }

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null 2>&1 || { log "ERROR: 'go' not found on PATH"; exit 1; }
  log "building Alertmanager $VERSION from the Go module proxy (about a minute the first time)"
  mkdir -p "$BIN_DIR"
  # Build into a private GOBIN, then rename: an interrupted build never leaves a binary
  # that the next run would take as complete.
  work="$(mktemp -d "$BIN_DIR/.alertmanager-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  CGO_ENABLED=0 GOBIN="$work" GOFLAGS=-buildvcs=false \
    go install "github.com/prometheus/alertmanager/cmd/alertmanager@$VERSION" >&2
  mv -f "$work/alertmanager" "$BIN"
fi
echo "$BIN"
