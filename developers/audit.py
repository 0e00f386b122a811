"""The audit trail: one row per read of study data, store, export, anonymisation, deletion,
sharing change and API key creation/deletion.

:func:`audit_record` is one INSERT and never raises: a failure is logged (ids only) and
swallowed, so auditing can't make a request fail. Inside an open transaction it writes in a
savepoint, so a failed insert doesn't poison the caller's transaction. Cost on SQLite: see
``bench/audit_overhead.py``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.db import connection, transaction

from developers.models import AuditAction, AuditEvent

logger = logging.getLogger(__name__)

ACTIONS = frozenset(AuditAction.values)


def audit_record(**fields: Any) -> AuditEvent | None:
    """Record who did ``action`` to which study/instance, how and from where: the record
    :func:`audit_event` builds from ``fields``, written in a savepoint when a transaction is
    open. Returns the event, or None if it could not be written (logged with ids only)."""
    try:
        event = audit_event(**fields)
        if connection.in_atomic_block:
            with transaction.atomic():
                event.save(force_insert=True)
        else:
            event.save(force_insert=True)
        return event
    except Exception:  # auditing must never make a request fail (logged with ids)
        logger.exception(
            "audit record failed action=%s study=%s instance=%s",
            fields.get("action"),
            getattr(fields.get("study"), "pk", None),
            getattr(fields.get("instance"), "pk", None),
        )
        return None


def audit_event(
    *,
    request: Any = None,
    user: Any = None,
    action: str,
    study: Any = None,
    instance: Any = None,
    protocol: str = "http",
    detail: str = "",
    api_key_id: str = "",
    client_address: str | None = None,
) -> AuditEvent:
    """An audit record, not yet saved (:func:`audit_record` saves it; the ingest writes it
    in the same statement as the instance).

    ``user`` defaults to ``request.user``; the API key (prefix), route and client address
    come from ``request`` when given. ``study`` defaults to ``instance``'s study. Only ids and
    UIDs are stored, never names. An unknown ``action`` raises ValueError."""
    from developers.authentication import api_key_from_request

    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        user = None
    if request is not None and not api_key_id:
        key = api_key_from_request(request)
        api_key_id = key.prefix if key is not None else ""
    study_id, study_uid = _study_ids(study, instance)
    return AuditEvent(
        user=user,
        api_key_id=api_key_id[:16],
        action=action,
        protocol=protocol[:16],
        route=(getattr(request, "path", "") or "")[:255] if request is not None else "",
        study_id=study_id,
        study_uid=study_uid,
        instance_id=getattr(instance, "pk", None),
        sop_instance_uid=getattr(instance, "sop_instance_uid", "") or "",
        client_address=_address(client_address, request),
        detail=(detail or "")[:255],
    )


def _study_ids(study: Any, instance: Any) -> tuple[int | None, str]:
    """The study's id and UID; for an instance alone, whatever is already loaded
    (``select_related("series__study")``): auditing must not add a query."""
    if study is None and instance is not None:
        series = instance._state.fields_cache.get("series")
        if series is None:
            return None, ""
        study = series._state.fields_cache.get("study")
        if study is None:
            return series.study_id, ""
    if study is None:
        return None, ""
    return study.pk, study.study_instance_uid or ""


def _address(explicit: str | None, request: Any) -> str | None:
    value = explicit
    if value is None and request is not None:
        meta = getattr(request, "META", {}) or {}
        value = meta.get("REMOTE_ADDR")
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None
