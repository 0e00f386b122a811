"""Hand-built SQL for the ingest's hot path.

The ingest writes a few hundred instances a second, each with the same handful of
statements. The ORM builds each statement anew, every time: for an INSERT through
``Model.save`` that was about a quarter of the statement's CPU, for a ``raw()`` read the
column mapping. Here each statement is built once per model and database vendor, then run
on a plain cursor. The rows, the field conversions (``pre_save``/``get_db_prep_save``,
``from_db``) and the ``post_save`` signal are the ORM's own.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple, TypeVar

from django.db import connections, transaction
from django.db.models import Model
from django.db.models.signals import post_save

from dicom.models import Series, Study

M = TypeVar("M", bound=Model)


@cache
def _insert_plan(model: type[Model], vendor: str, returning: bool) -> tuple[str, tuple]:
    """The INSERT of every concrete column but the primary key, and those fields."""
    connection = connections["default"]
    quote = connection.ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    # Table and column names from the model's metadata; every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    if returning:
        sql += f" RETURNING {quote(model._meta.pk.column)}"
    return sql, fields


def row_insert(obj: M, *, using: str = "default") -> M:
    """INSERT a new object's row, as ``obj.save(force_insert=True)`` would: field defaults
    and ``auto_now_add`` through each field's ``pre_save``, the new primary key on the
    object, then ``post_save`` with ``created=True``."""
    connection = connections[using]
    returning = connection.features.can_return_columns_from_insert
    sql, fields = _insert_plan(type(obj), connection.vendor, returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, _values(obj, fields, connection))
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    _inserted(obj, pk, using)
    return obj


def rows_insert_linked(parent: Model, child: Model, *, link: str, using: str = "default") -> None:
    """INSERT ``parent``, then ``child`` with its ``link`` column set to the parent's new
    primary key, both or neither. On PostgreSQL that is one statement (a data-modifying
    ``WITH``, atomic by itself): one round trip instead of two. Elsewhere, two INSERTs in
    one transaction."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            row_insert(parent, using=using)
            setattr(child, link, parent.pk)
            row_insert(child, using=using)
        return
    sql, parent_fields, child_fields = _linked_plan(type(parent), type(child), link)
    values = [
        *_values(parent, parent_fields, connection),
        *_values(child, child_fields, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        parent_pk, child_pk = cursor.fetchone()
    _inserted(parent, parent_pk, using)
    setattr(child, link, parent_pk)
    _inserted(child, child_pk, using)


@cache
def _linked_plan(parent: type[Model], child: type[Model], link: str) -> tuple[str, tuple, tuple]:
    parent_sql, parent_fields = _insert_plan(parent, "postgresql", True)
    quote = connections["default"].ops.quote_name
    child_fields = tuple(
        f for f in child._meta.concrete_fields if not f.primary_key and f.attname != link
    )
    link_column = child._meta.get_field(link).column
    # Table and column names from the models' metadata; every value is a parameter.
    template = "WITH parent AS ({}) INSERT INTO {} ({}, {}) SELECT {}, parent.{} FROM parent"
    sql = (template + " RETURNING {}, {}").format(
        parent_sql,
        quote(child._meta.db_table),
        ", ".join(quote(f.column) for f in child_fields),
        quote(link_column),
        ", ".join(["%s"] * len(child_fields)),
        quote(parent._meta.pk.column),
        quote(link_column),
        quote(child._meta.pk.column),
    )
    return sql, parent_fields, child_fields


def _values(obj: Model, fields: tuple, connection: Any) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _inserted(obj: Model, pk: Any, using: str) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using
    post_save.send(
        sender=type(obj), instance=obj, created=True, update_fields=None, raw=False, using=using
    )


@cache
def _series_study_plan(vendor: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    columns, source = _series_study_parts()
    sql = f"SELECT {', '.join(columns)} {source}"
    series_fields = tuple(f.attname for f in Series._meta.concrete_fields)
    study_fields = tuple(f.attname for f in Study._meta.concrete_fields)
    return sql, series_fields, study_fields


def _series_study_parts() -> tuple[list[str], str]:
    """The columns (the series', the study's, then whether the study is shared) and the
    ``FROM ... WHERE`` of reading a series by its UID with its study."""
    columns = [f'se."{f.column}"' for f in Series._meta.concrete_fields]
    columns += [f'st."{f.column}"' for f in Study._meta.concrete_fields]
    columns.append(
        f"EXISTS (SELECT 1 FROM {Study.shared_with.through._meta.db_table} sh"  # noqa: S608
        " WHERE sh.study_id = st.id)"
    )
    source = (  # names from the models' metadata; the UID is a parameter
        f"FROM {Series._meta.db_table} se JOIN {Study._meta.db_table} st"
        " ON st.id = se.study_id WHERE se.series_instance_uid = %s"
    )
    return columns, source


def series_with_study(series_uid: str, *, using: str = "default") -> Series | None:
    """A stored series with its study (``series.study``) in one statement; the study also
    says whether it is shared with any group (``study.is_shared``)."""
    connection = connections[using]
    sql, _, _ = _series_study_plan(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [series_uid])
        row = cursor.fetchone()
    if row is None:
        return None
    return _series_from_row(row, connection, using)


def _series_from_row(row: Any, connection: Any, using: str) -> Series:
    _, series_fields, study_fields = _series_study_plan(connection.vendor)
    row = _row_convert(row, connection)
    n = len(series_fields)
    series = Series.from_db(using, series_fields, row[:n])
    study = Study.from_db(using, study_fields, row[n : n + len(study_fields)])
    study.is_shared = bool(row[-1])  # type: ignore[attr-defined]  # SQLite answers 0 or 1
    series.study = study
    return series


@cache
def _converters(vendor: str) -> list[Any]:
    """Per column, what reading it through the ORM does to the value (SQLite returns dates
    and booleans as text and integers), or None when nothing needs doing."""
    connection = connections["default"]
    result: list[Any] = []
    for field in [*Series._meta.concrete_fields, *Study._meta.concrete_fields]:
        column = field.get_col(field.model._meta.db_table)
        steps = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        result.append((steps, column) if steps else None)
    return [*result, None]  # is_shared


def _row_convert(row: tuple, connection: Any) -> list[Any]:
    values = list(row)
    for i, plan in enumerate(_converters(connection.vendor)):
        if plan is not None:
            steps, column = plan
            for step in steps:
                values[i] = step(values[i], column, connection)
    return values


# --- an instance of a stored series, in one statement --------------------------------------


def rows_insert_into_owned_series(
    instance: Model, audit: Model, *, series_uid: str, study_uid: str, owner_id: int
) -> Series | None:
    """On PostgreSQL, in ONE statement (its own transaction under autocommit): read the series
    ``series_uid`` with its study and, when that study has the UID ``study_uid`` and belongs to
    ``owner_id``, INSERT ``instance`` into the series and ``audit`` (its ``instance_id`` and
    ``study_id`` from those rows). Returns the series with its study (``series.study``,
    ``study.is_shared``) when both rows were written; None when nothing was written (no such series,
    another study or another owner: the caller decides in a transaction of its own).

    The common case of an ingest, one more instance of a study its uploader is filling,
    costs one round trip and one commit instead of four statements (BEGIN, the series, the
    instance, COMMIT). A unique violation (the SOP Instance UID is stored) raises
    ``IntegrityError`` and writes nothing."""
    connection = connections["default"]
    plan = _owned_series_plan(type(instance), type(audit))
    values = [
        series_uid,
        *_values(instance, plan.instance_fields, connection),
        study_uid,
        owner_id,
        *_values(audit, plan.audit_fields, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, values)
        row = cursor.fetchone()
    if row is None or row[-2] is None:
        return None
    *series_row, instance_pk, audit_pk = row
    series = _series_from_row(series_row, connection, "default")
    instance.series = series
    _inserted(instance, instance_pk, "default")
    audit.instance_id = instance_pk
    audit.study_id = series.study_id
    _inserted(audit, audit_pk, "default")
    return series


class _OwnedSeriesPlan(NamedTuple):
    sql: str
    instance_fields: tuple
    audit_fields: tuple


@cache
def _owned_series_plan(instance_model: type[Model], audit_model: type[Model]) -> _OwnedSeriesPlan:
    quote = connections["default"].ops.quote_name
    _, series_fields, study_fields = _series_study_plan("postgresql")
    columns, source = _series_study_parts()
    aliases = [f"c{i}" for i in range(len(columns))]  # series and study share column names
    n = len(series_fields)
    series_pk = aliases[series_fields.index(Series._meta.pk.attname)]
    study_pk = aliases[n + study_fields.index(Study._meta.pk.attname)]
    study_uid = aliases[n + study_fields.index("study_instance_uid")]
    owner = aliases[n + study_fields.index("owner_id")]
    instance_pk = quote(instance_model._meta.pk.column)
    audit_pk = quote(audit_model._meta.pk.column)

    def insert(model: type[Model], links: dict[str, str], rows: str) -> tuple[str, tuple]:
        """INSERT ... SELECT of every column but the primary key: parameters, then the
        ``links`` columns from ``rows``."""
        fields = tuple(
            f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in links
        )
        columns = [quote(f.column) for f in fields]
        columns += [quote(model._meta.get_field(name).column) for name in links]
        sql = "INSERT INTO {} ({}) SELECT {} FROM {}".format(  # noqa: S608 - model names
            quote(model._meta.db_table),
            ", ".join(columns),
            ", ".join(["%s"] * len(fields) + list(links.values())),
            rows,
        )
        return sql, fields

    instance_sql, instance_fields = insert(instance_model, {"series_id": f"s.{series_pk}"}, "s")
    audit_sql, audit_fields = insert(
        audit_model, {"instance_id": f"i.{instance_pk}", "study_id": f"s.{study_pk}"}, "i, s"
    )
    named = ", ".join(
        f"{column} AS {alias}" for column, alias in zip(columns, aliases, strict=True)
    )
    sql = (  # names from the models' metadata; every value is a parameter
        f"WITH s AS (SELECT {named} {source}),"  # noqa: S608
        f" i AS ({instance_sql} WHERE s.{study_uid} = %s AND s.{owner} = %s"
        f" RETURNING {instance_pk}),"
        f" a AS ({audit_sql} RETURNING {audit_pk})"
        f" SELECT s.*, (SELECT {instance_pk} FROM i), (SELECT {audit_pk} FROM a) FROM s"
    )
    return _OwnedSeriesPlan(sql, instance_fields, audit_fields)
