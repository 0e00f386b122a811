"""Django's PostgreSQL backend, with a connection pool that hands out the most recently
returned connection first (``DB_POOL=true`` selects it).

psycopg_pool takes connections with ``popleft()`` and gives them back with ``append()``:
a queue, so requests walk through every connection in turn, and each connection plans and
prepares every statement for itself. After a burst of uploads had grown the pool, the next
QIDO searches each paid that price once per connection (p50 4.6 ms against 2.1 ms warm).
Taking the most recent connection keeps the work on the few connections that are warm; the
others sit idle until the pool closes them (``max_idle``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from django.db.backends.postgresql import base


class _MostRecentFirst(deque):
    def popleft(self) -> Any:
        return self.pop()


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool
        if pool is not None and not isinstance(pool._pool, _MostRecentFirst):
            with pool._lock:
                pool._pool = _MostRecentFirst(pool._pool)
        return pool
