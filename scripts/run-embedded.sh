#!/usr/bin/env bash
# `make run`: Tocsin in one process (`tocsin up`) with examples/tocsin.yaml, plus a local
# webhook sink on 127.0.0.1:9999 that prints the pages it receives. Ctrl-C stops both.
# TOCSIN_PORT (default 8080) and TOCSIN_DATA_DIR (default ./tocsin-data) move it aside.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${TOCSIN_PORT:-8080}"
DATA_DIR="${TOCSIN_DATA_DIR:-tocsin-data}"
# A development key for the operator API, printed below; never use it beyond this machine.
export TOCSIN_ADMIN_TOKEN="${TOCSIN_ADMIN_TOKEN:-dev-admin-token}"
CONFIG="$ROOT/examples/tocsin.yaml"
TOKEN=example-token-change-me-0123456789
URL="http://127.0.0.1:$PORT"
AUTH="Authorization: Bearer $TOCSIN_ADMIN_TOKEN"

"$ROOT/.venv/bin/python" "$ROOT/scripts/webhook-sink.py" 9999 &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT

cat <<TXT
Tocsin starts on $URL (data in $DATA_DIR). Pages appear below, from Tocsin's log (contact
type "log") and from the webhook sink on :9999. The operator API key of this run is
TOCSIN_ADMIN_TOKEN=$TOCSIN_ADMIN_TOKEN (a development key). Try, in another shell:

  # an alert, as Alertmanager sends it: alice is paged at once, bob 5 minutes later
  curl -XPOST -H 'Content-Type: application/json' $URL/v1/ingest/$TOKEN \\
    -d '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","severity":"critical"},"annotations":{"summary":"Checkout 5xx above 5%"}}]}'

  # the incidents
  curl -H '$AUTH' $URL/api/v1/incidents

  # acknowledge the newest triggered one (stops escalation: bob is not paged)
  ID=\$(curl -s -H '$AUTH' '$URL/api/v1/incidents?status=triggered' \\
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["incidents"][0]["id"])')
  curl -XPOST -H '$AUTH' $URL/api/v1/incidents/\$ID/acknowledge

  # the public status page (checkout in major outage while that incident is open) and its
  # Statuspage-compatible JSON
  open $URL/status/public
  curl $URL/status/public/api/v2/summary.json

  # metrics and the API docs
  curl $URL/metrics
  open $URL/docs

TXT
"$ROOT/.venv/bin/tocsin" up --config "$CONFIG" --data-dir "$DATA_DIR" --port "$PORT"
