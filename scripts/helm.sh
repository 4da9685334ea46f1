#!/usr/bin/env bash
# Build Helm from the Go module proxy for the deployment checks (helm lint / helm template).
#
#   scripts/helm.sh        build .cache/bin/helm-<version> unless present; print its path
#
# Environment: TOCSIN_HELM_VERSION (v4.3.2)
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh" helm helm.sh/helm/v4/cmd/helm \
  "${TOCSIN_HELM_VERSION:-v4.3.2}"
