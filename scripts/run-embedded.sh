#!/usr/bin/env bash
# `make run`: Tocsin in one process (`tocsin up`) with examples/tocsin.yaml, plus a local
# webhook sink on 127.0.0.1:9999 that prints the pages it receives. Ctrl-C stops both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${TOCSIN_PORT:-8080}"
export TOCSIN_ADMIN_TOKEN="${TOCSIN_ADMIN_TOKEN:-dev-admin-token}"
CONFIG="$ROOT/examples/tocsin.yaml"
TOKEN=example-token-change-me-0123456789

"$ROOT/.venv/bin/python" "$ROOT/scripts/webhook-sink.py" 9999 &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT

cat <<TXT
Tocsin starts on http://127.0.0.1:$PORT (data in ./tocsin-data). Pages appear below, from
Tocsin's log (contact type "log") and from the webhook sink on :9999. Try, in another shell:

  # an alert, as Alertmanager sends it: alice is paged at once, bob 5 minutes later
  curl -XPOST -H 'Content-Type: application/json' http://127.0.0.1:$PORT/v1/ingest/$TOKEN \\
    -d '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","severity":"critical"},"annotations":{"summary":"Checkout 5xx above 5%"}}]}'

  # the incidents, and acknowledging one (stops escalation)
  curl -H 'Authorization: Bearer $TOCSIN_ADMIN_TOKEN' http://127.0.0.1:$PORT/api/v1/incidents
  curl -XPOST -H 'Authorization: Bearer $TOCSIN_ADMIN_TOKEN' http://127.0.0.1:$PORT/api/v1/incidents/<id>/acknowledge

  # metrics and the API docs
  curl http://127.0.0.1:$PORT/metrics
  open http://127.0.0.1:$PORT/docs

TXT
"$ROOT/.venv/bin/tocsin" up --config "$CONFIG" --data-dir "${TOCSIN_DATA_DIR:-tocsin-data}" --port "$PORT"
