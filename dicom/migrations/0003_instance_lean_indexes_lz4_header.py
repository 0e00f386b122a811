"""PostgreSQL only: drop the ``LIKE`` indexes of columns matched only exactly (UIDs and the
content hash), and compress the header JSON with lz4. Rows stay as they are; new headers
are written with lz4 (0.15 ms less PostgreSQL CPU per stored instance, measured in
``bench/README.md``)."""

from functools import partial

from django.db import migrations

from config.postgresql.schema import like_indexes_create, like_indexes_drop, toast_compression_set

INSTANCE = ("dicom", "Instance")
EXACT_ONLY = ["sop_instance_uid", "sop_class_uid", "sha256"]


class Migration(migrations.Migration):
    dependencies = [("dicom", "0002_header_fast_json")]

    operations = [
        migrations.RunPython(
            partial(like_indexes_drop, model=INSTANCE, columns=EXACT_ONLY),
            partial(like_indexes_create, model=INSTANCE, columns=EXACT_ONLY),
        ),
        migrations.RunPython(
            partial(toast_compression_set, model=INSTANCE, column="header", method="lz4"),
            partial(toast_compression_set, model=INSTANCE, column="header", method="pglz"),
        ),
    ]
