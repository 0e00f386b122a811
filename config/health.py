"""Health endpoints for load balancers and orchestrators (no authentication)."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no database, cache or storage."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, cache and storage are reachable (503 naming what is not)."""
    checks = {"database": _database, "cache": _cache, "storage": _storage}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check failed check=%s error=%s", name, type(exc).__name__)
            results[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    key = f"readyz:{uuid.uuid4()}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value written")
    cache.delete(key)


def _storage() -> None:
    name = default_storage.save(f"readyz/{uuid.uuid4()}.txt", ContentFile(b"ok"))
    default_storage.delete(name)
