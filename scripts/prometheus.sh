#!/usr/bin/env bash
# Build a real Prometheus server from the Go module proxy for the dashboard tests (they let it
# scrape Tocsin during an end-to-end scenario and evaluate every panel's PromQL against it).
#
#   scripts/prometheus.sh        build .cache/bin/prometheus-<version> unless present; print its path
#
# The module's v0.3xx.y versions are Prometheus 3.x releases. Built without the
# `builtinassets` tag: the web UI is left out (its assets are a build output that the module
# zip does not carry); the HTTP API the tests use is all there. `remove_all_sd` leaves out the
# cloud service discoveries (AWS, Azure, GCE, Kubernetes, ...): the tests use static targets,
# and the cloud SDKs are most of the build time.
#
# Environment: TOCSIN_PROMETHEUS_VERSION (v0.316.0)
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh" prometheus \
  github.com/prometheus/prometheus/cmd/prometheus "${TOCSIN_PROMETHEUS_VERSION:-v0.316.0}" \
  remove_all_sd
