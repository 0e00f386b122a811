#!/usr/bin/env bash
# Install and run Lightbox on the embedded default (SQLite, local files, in-memory channel
# layer): web server (ASGI, with WebSockets) + task worker, and a demo login it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py demo_user
.venv/bin/python manage.py jobs_worker --no-reload &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT INT TERM
.venv/bin/uvicorn config.asgi:application --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
