#!/usr/bin/env bash
# Print the path of the Compose specification's JSON schema, from the compose-go module on the
# Go module proxy (downloaded once into Go's module cache).
#
# Environment: TOCSIN_COMPOSE_GO_VERSION (v2.16.2; v2.17.0 needs a newer Go toolchain)
set -euo pipefail
VERSION="${TOCSIN_COMPOSE_GO_VERSION:-v2.16.2}"
command -v go >/dev/null 2>&1 || { echo "compose-schema: ERROR: 'go' not found on PATH" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json \
  "github.com/compose-spec/compose-go/v2@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[[ -f "$dir/schema/compose-spec.json" ]] || { echo "compose-schema: no schema in '$dir'" >&2; exit 1; }
echo "$dir/schema/compose-spec.json"
