#!/usr/bin/env bash
# Empty the benchmark server's archive (rows and files), keeping users and tokens: as empty
# as the Orthanc the harness resets (storage and database wiped). TRUNCATE, not DELETE: rows
# deleted run after run stay behind as dead tuples until a vacuum, and on a PostgreSQL without
# autovacuum (this machine's) every later run's inserts wade through them (the unique index on
# SOP Instance UID gains an entry per run for each instance of the corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/env.sh
.venv/bin/python manage.py shell -c "
from django.db import connection
from developers.models import AuditEvent
from dicom.models import Instance, Patient, Series, Study
tables = ', '.join(m._meta.db_table for m in (Instance, Series, Study, Patient, AuditEvent))
with connection.cursor() as cursor:
    cursor.execute(f'TRUNCATE {tables} CASCADE')"
rm -rf "$MEDIA_ROOT/final"
redis-cli -n 2 flushdb >/dev/null
