#!/usr/bin/env bash
# Install the headless browser of the status page tests: Debian's `chromium` package, driven by
# Playwright with `executable_path` (Playwright's own browser downloads are not used).
#
#   scripts/browser.sh     install chromium unless present (needs root for apt); print its version
#
# Idempotent: when `chromium` is on PATH nothing is installed. Without root and without
# chromium it says so and exits non-zero, so `make test` fails loudly instead of skipping.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/browser.sh: chromium is not installed and this is not root;" \
      "install Debian's chromium package (apt-get install -y chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
chromium --version
