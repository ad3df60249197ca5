#!/usr/bin/env bash
# Browser check of the MLflow UI: serve a tracking store on 127.0.0.1 (a free port), open the
# experiment page in headless Chromium, save a screenshot, stop the server by its PID.
#
#   scripts/mlflow-ui-screenshot.sh [--store URI] [--experiment NAME] [--out PNG]
#
# Defaults: --store sqlite:///results/mlflow.db --experiment demo --out results/mlflow-ui.png
# Needs the Debian package `chromium` (installed here with apt-get when run as root).
set -euo pipefail

STORE="sqlite:///results/mlflow.db"
EXPERIMENT="demo"
OUT="results/mlflow-ui.png"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --store) STORE="$2"; shift 2 ;;
    --experiment) EXPERIMENT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "mlflow-ui-screenshot: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
if [[ "$STORE" == sqlite:///* && ! -f "${STORE#sqlite:///}" ]]; then
  echo "mlflow-ui-screenshot: --store $STORE: no such database file" >&2; exit 1
fi
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "mlflow-ui-screenshot: chromium is missing: sudo apt-get install chromium" >&2; exit 1
  fi
fi

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
setsid "$PY" -m mlflow server --backend-store-uri "$STORE" --host 127.0.0.1 --port "$PORT" \
  --workers 1 >"$WORK/server.log" 2>&1 &
SERVER=$!

stop_server() {
  kill -TERM "$SERVER" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$SERVER" 2>/dev/null || true  # its process group (workers), if still there
  rm -rf "$WORK"
}
trap stop_server EXIT

for _ in $(seq 120); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$URL/health" >/dev/null || { echo "server not healthy after 60 s" >&2; exit 1; }

ID=$(curl -fsS "$URL/api/2.0/mlflow/experiments/get-by-name?experiment_name=$EXPERIMENT" \
  | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["experiment"]["experiment_id"])') || {
  echo "mlflow-ui-screenshot: no experiment named $EXPERIMENT in $STORE" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$WORK/profile" --screenshot="$(realpath -m "$OUT")" --window-size=1400,900 \
  --virtual-time-budget=15000 "$URL/#/experiments/$ID/runs?workflowType=machine_learning&viewStateShareKey=i2sb" 2>"$WORK/chromium.log" \
  || { cat "$WORK/chromium.log" >&2; exit 1; }
echo "screenshot of $URL/#/experiments/$ID/runs (Model training mode, i2sb columns): $OUT"
