#!/usr/bin/env bash
# DICOMweb and DIMSE benchmarks (issue 4): a production-like Lightbox (DEBUG off, uvicorn,
# PostgreSQL + Redis) on its own database, port, files and Redis db, so it never touches
# another benchmark's server.
#
#   bash bench/dicomweb.sh serve              # start (uvicorn, $WORKERS processes), write a JWT
#   bash bench/dicomweb.sh reset              # empty the archive (rows, files, cache)
#   bash bench/dicomweb.sh harness ARGS...    # ../shared/bench/dicombench.py --flavour ours ...
#   bash bench/dicomweb.sh storescu DIR       # C-STORE every file of DIR with dcmtk: inst/s
#   bash bench/dicomweb.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/env.sh
export DATABASE_URL=${DWEB_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dweb_bench}
export REDIS_URL=${DWEB_REDIS_URL:-redis://127.0.0.1:6379/3} CACHE_KEY_PREFIX=dweb-bench
export MEDIA_ROOT=/tmp/dweb-bench/media LIGHTBOX_STAGING_DIR=/tmp/dweb-bench/staging
export DICOM_SCP_ALLOWED="*=bench@example.com" DICOM_SCP_AE_TITLE=LIGHTBOX
# A connection pool shared by the request threads (and, from env.sh, prepared statements).
export DB_CONN_MAX_AGE=0 DB_POOL=true
PORT=${PORT:-8100}
SCP_PORT=${SCP_PORT:-11190}
PIDFILE=/tmp/dweb-bench.pid
HARNESS=${BENCH_HARNESS:-$(cd .. && pwd)/shared/bench}

serve() {
  source bench/server_venv.sh
  mkdir -p "$MEDIA_ROOT" "$LIGHTBOX_STAGING_DIR"
  psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='dweb_bench'" \
    | grep -q 1 || createdb -h 127.0.0.1 -U postgres dweb_bench
  .venv/bin/python manage.py migrate --noinput -v0
  .venv/bin/python manage.py shell -c "
from accounts.models import User
u, _ = User.objects.get_or_create(email='bench@example.com')
u.set_password('bench-password-1'); u.save()"
  "$SERVER_VENV/bin/uvicorn" config.asgi:application --host 127.0.0.1 --port "$PORT" \
    --workers "${WORKERS:-2}" --log-level warning --no-access-log &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  curl -sf -X POST "http://127.0.0.1:$PORT/api/token/" -H 'Content-Type: application/json' \
    -d '{"email": "bench@example.com", "password": "bench-password-1"}' \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['access'])" > /tmp/dweb-bench/token
  echo "Lightbox on :$PORT (pid $(cat "$PIDFILE")); token in /tmp/dweb-bench/token"
}

reset() {
  .venv/bin/python manage.py shell -c "
from dicom.models import Instance, Series, Study, Patient
Instance.objects.all().delete(); Series.objects.all().delete()
Study.objects.all().delete(); Patient.objects.all().delete()"
  rm -rf "$MEDIA_ROOT/final"
  redis-cli -n 3 flushdb >/dev/null
}

harness() {
  .venv/bin/python "$HARNESS/dicombench.py" --flavour ours --base-url "http://127.0.0.1:$PORT" \
    --header "Authorization: Bearer $(cat /tmp/dweb-bench/token)" --pid-file "$PIDFILE" \
    --storage-dir /tmp/dweb-bench --reset-cmd "bash bench/dicomweb.sh reset" "$@"
}

storescu_run() {
  local dir=$1
  source bench/server_venv.sh
  "$SERVER_VENV/bin/python" manage.py dicom_scp --host 127.0.0.1 --port "$SCP_PORT" > /tmp/dweb-bench/scp.log 2>&1 &
  local scp=$!
  for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$SCP_PORT") 2>/dev/null && break; sleep 0.2; done
  local n start end
  n=$(find "$dir" -name '*.dcm' | wc -l)
  start=$(date +%s.%N)
  find "$dir" -name '*.dcm' -print0 | xargs -0 storescu -aet BENCH -aec LIGHTBOX -nh 127.0.0.1 "$SCP_PORT"
  end=$(date +%s.%N)
  kill -TERM "$scp"; wait "$scp" || true
  python3 -c "n=$n; s=$end-$start; print(f'storescu: {n} instances in {s:.1f} s = {n/s:.1f} inst/s (sequential storescu, one association per xargs batch)')"
}

case "${1:-}" in
  serve) serve ;;
  reset) reset ;;
  stop) kill "$(cat "$PIDFILE")" ;;
  harness) shift; harness "$@" ;;
  storescu) storescu_run "$2" ;;
  *) sed -n 2,11p "$0"; exit 2 ;;
esac
