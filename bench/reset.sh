#!/usr/bin/env bash
# Empty the benchmark server's archive (rows and files), keeping users and tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/env.sh
.venv/bin/python manage.py shell -c "
from dicom.models import Instance, Series, Study, Patient
Instance.objects.all().delete(); Series.objects.all().delete()
Study.objects.all().delete(); Patient.objects.all().delete()"
rm -rf "$MEDIA_ROOT/final"
redis-cli -n 2 flushdb >/dev/null
