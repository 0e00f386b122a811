"""PostgreSQL-only schema tuning used by migrations (a no-op on other databases).

Django gives every indexed or unique ``CharField`` a second, ``varchar_pattern_ops`` index
(``..._like``) for ``LIKE 'abc%'`` lookups. Where a column is only ever matched exactly
(UIDs, hashes, fixed codes) that index is never read, yet every INSERT writes it.
"""

from __future__ import annotations

from typing import Any


def like_indexes_drop(
    apps: Any, schema_editor: Any, model: tuple[str, str], columns: list[str]
) -> None:
    for name, _table, _column in _like_indexes(apps, schema_editor, model, columns):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def like_indexes_create(
    apps: Any, schema_editor: Any, model: tuple[str, str], columns: list[str]
) -> None:
    quote = schema_editor.quote_name
    for name, table, column in _like_indexes(apps, schema_editor, model, columns):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)}"
            f" ({quote(column)} varchar_pattern_ops)"
        )


def _like_indexes(
    apps: Any, schema_editor: Any, model: tuple[str, str], columns: list[str]
) -> list[tuple[str, str, str]]:
    """(index name as Django names it, table, column) per column; none off PostgreSQL."""
    if schema_editor.connection.vendor != "postgresql":
        return []
    table = apps.get_model(*model)._meta.db_table
    return [
        (schema_editor._create_index_name(table, [column], suffix="_like"), table, column)
        for column in columns
    ]


def toast_compression_set(
    apps: Any, schema_editor: Any, model: tuple[str, str], column: str, method: str
) -> None:
    """Compress ``column``'s large values with ``method`` (``lz4``: several times faster than
    the default ``pglz`` at a similar size), if this server was built with it."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
            [method],
        )
        row = cursor.fetchone()
    if not row or not row[0]:
        return  # PostgreSQL < 14, or built without it: values stay compressed as before
    quote = schema_editor.quote_name
    table = apps.get_model(*model)._meta.db_table
    schema_editor.execute(
        f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET COMPRESSION {method}"
    )
