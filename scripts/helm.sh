#!/usr/bin/env bash
# Build Helm from the Go module proxy for the deployment checks (helm lint / helm template).
#
#   scripts/helm.sh        build .cache/bin/helm-<version> unless present; print its path
#
# A version bump builds a new binary beside the old one; nothing is rebuilt otherwise.
#
# Environment: TOCSIN_HELM_VERSION (v4.3.2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${TOCSIN_HELM_VERSION:-v4.3.2}"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/helm-$VERSION"

log() { echo "helm: $*" >&2; }

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null 2>&1 || { log "ERROR: 'go' not found on PATH"; exit 1; }
  log "building Helm $VERSION from the Go module proxy (a few minutes the first time)"
  mkdir -p "$BIN_DIR"
  # Build into a private GOBIN, then rename: an interrupted build never leaves a binary
  # that the next run would take as complete.
  work="$(mktemp -d "$BIN_DIR/.helm-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  CGO_ENABLED=0 GOBIN="$work" GOFLAGS=-buildvcs=false \
    go install "helm.sh/helm/v4/cmd/helm@$VERSION" >&2
  mv -f "$work/helm" "$BIN"
fi
echo "$BIN"
