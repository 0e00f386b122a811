#!/usr/bin/env bash
# Start Lightbox with production-like settings for benchmarks: DEBUG off, uvicorn with
# $WORKERS processes, PostgreSQL + Redis, files under /tmp/lightbox-bench. Prints a JWT
# for the bench user into /tmp/lightbox-bench/token. Stop with: kill $(cat /tmp/lightbox-bench.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/env.sh
source bench/server_venv.sh
mkdir -p "$MEDIA_ROOT" "$LIGHTBOX_STAGING_DIR"
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='lightbox_bench'" | grep -q 1 \
  || createdb -h 127.0.0.1 -U postgres lightbox_bench
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py shell -c "
from accounts.models import User
u, _ = User.objects.get_or_create(email='bench@example.com')
u.set_password('bench-password-1'); u.save()"
"$SERVER_VENV/bin/uvicorn" config.asgi:application --host 127.0.0.1 --port "${PORT:-8000}" \
  --workers "${WORKERS:-2}" --log-level warning --no-access-log &
echo $! > /tmp/lightbox-bench.pid
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:${PORT:-8000}/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "http://127.0.0.1:${PORT:-8000}/api/token/" -H 'Content-Type: application/json' \
  -d '{"email": "bench@example.com", "password": "bench-password-1"}' \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['access'])" > /tmp/lightbox-bench/token
echo "Lightbox running (pid $(cat /tmp/lightbox-bench.pid)); token in /tmp/lightbox-bench/token"
