"""PostgreSQL only: drop the ``LIKE`` indexes of the audit trail's ``action`` and
``protocol`` (fixed codes, only ever matched exactly); each store wrote both."""

from functools import partial

from django.db import migrations

from config.postgresql.schema import like_indexes_create, like_indexes_drop

AUDIT = ("developers", "AuditEvent")
EXACT_ONLY = ["action", "protocol"]


class Migration(migrations.Migration):
    dependencies = [("developers", "0001_developer_platform")]

    operations = [
        migrations.RunPython(
            partial(like_indexes_drop, model=AUDIT, columns=EXACT_ONLY),
            partial(like_indexes_create, model=AUDIT, columns=EXACT_ONLY),
        ),
    ]
