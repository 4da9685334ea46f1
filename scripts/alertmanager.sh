#!/usr/bin/env bash
# Build a real Prometheus Alertmanager from the Go module proxy for the end-to-end tests.
#
#   scripts/alertmanager.sh        build .cache/bin/alertmanager-<version> unless present; print its path
#
# v0.31.1 is the newest release whose module zip carries its web UI assets (committed as
# generated Go code); from v0.32 on the UI is embedded from `ui/app/dist`, a build output
# that is not in the module zip, so `go install` of those versions fails.
#
# Environment: TOCSIN_ALERTMANAGER_VERSION (v0.31.1)
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh" alertmanager \
  github.com/prometheus/alertmanager/cmd/alertmanager "${TOCSIN_ALERTMANAGER_VERSION:-v0.31.1}"
