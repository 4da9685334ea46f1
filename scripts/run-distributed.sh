#!/usr/bin/env bash
# Run the four Tocsin services as separate processes on the Kafka and MongoDB named by
# TOCSIN_KAFKA_BOOTSTRAP / TOCSIN_MONGO_URL, until Ctrl-C. Usage: run-distributed.sh CONFIG
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${1:?usage: run-distributed.sh CONFIG}"
"$ROOT/.venv/bin/tocsin" config check "$CONFIG"

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop EXIT INT TERM
for service in ingest triage escalation notifier; do
  "$ROOT/.venv/bin/tocsin" serve "$service" --config "$CONFIG" &
  pids+=($!)
done
cat <<TXT

Tocsin is starting: ingest :8081, triage :8082, escalation :8083, notifier :8084.
Try:
  curl -XPOST -H 'Content-Type: application/json' \\
    http://127.0.0.1:8081/v1/ingest/example-token-change-me-0123456789 \\
    -d '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","severity":"critical"},"annotations":{"summary":"5xx above 5%"}}]}'
  curl -H "Authorization: Bearer \$TOCSIN_ADMIN_TOKEN" http://127.0.0.1:8083/api/v1/incidents
  curl http://127.0.0.1:8081/metrics
TXT
wait -n "${pids[@]}"
