#!/usr/bin/env bash
# Run the test-suite (installs the development requirements into .venv first).
# SQLite by default; set DATABASE_URL and REDIS_URL to run it on PostgreSQL + Redis.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt || exit 1
.venv/bin/pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treated as a failure" >&2
  exit 1
fi
exit "$status"
