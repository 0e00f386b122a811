"""The PostgreSQL schema after the migrations: no unused LIKE indexes on the ingest's tables,
lz4 for the header JSON, and the UID lookups still served by their indexes."""

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's schema"),
]


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


def test_the_instance_and_audit_tables_have_no_like_indexes_on_exact_match_columns():
    for table in ("dicom_instance", "developers_auditevent"):
        assert not [name for name in _indexes(table) if name.endswith("_like")], table
    definitions = " ".join(_indexes("dicom_instance").values())
    for column in ("sop_instance_uid", "sop_class_uid", "sha256", "series_id"):
        assert f"({column})" in definitions  # the plain btree stays for exact matches


def test_the_header_is_compressed_with_lz4_where_the_server_has_it():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        (has_lz4,) = cursor.fetchone()
        cursor.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'dicom_instance'::regclass AND attname = 'header'"
        )
        (method,) = cursor.fetchone()
    assert method == ("l" if has_lz4 else "")
