"""Rate limits as one counter per client and window.

DRF's stock throttles keep, per client, the list of every request time in the window and
read and rewrite it (pickled) on each request: at the default 10,000 requests/hour that is
a list of up to 10,000 floats moved to and from Redis per request. These keep one integer
per client instead: the window opens at the client's first request and lasts the rate's
duration. With Redis the count is one round trip (``INCR`` and ``EXPIRE ... NX`` in a
pipeline); with another cache (tests, no Redis) the cache API. Same rates, same settings
(``DEFAULT_THROTTLE_RATES``), same 429 with ``Retry-After`` (seconds until the window
closes).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCacheClient
from rest_framework.throttling import (
    AnonRateThrottle,
    ScopedRateThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)


class WindowCounterThrottle(SimpleRateThrottle):
    """Allow ``num_requests`` per ``duration`` seconds, counted from the first request."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.key = f"{key}:count"  # not DRF's key: that one holds a pickled list
        self.now = self.timer()
        count = self._redis_count() if self._on_redis() else self._cache_count()
        return count <= self.num_requests

    def _on_redis(self) -> bool:
        return isinstance(getattr(self.cache, "_cache", None), RedisCacheClient)

    def _redis_count(self) -> int:
        key = self.cache.make_and_validate_key(self.key)
        pipe = self.cache._cache.get_client(key, write=True).pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, self.duration, nx=True)  # set once, when the window opens
        count, _ = pipe.execute()
        return int(count)

    def _cache_count(self) -> int:
        try:
            return self.cache.incr(self.key)
        except ValueError:  # no open window: open one
            if self.cache.add(self.key, 1, self.duration):
                self.cache.set(f"{self.key}:opened", self.now, self.duration)
                return 1
            return self.cache.incr(self.key)  # another request opened it first

    def wait(self) -> float:
        if self._on_redis():
            key = self.cache.make_and_validate_key(self.key)
            ttl = self.cache._cache.get_client(key).ttl(key)
            return float(max(1, ttl)) if ttl and ttl > 0 else float(self.duration)
        opened = self.cache.get(f"{self.key}:opened")
        if opened is None:
            return float(self.duration)
        return max(1.0, opened + self.duration - self.now)


class AnonThrottle(AnonRateThrottle, WindowCounterThrottle):
    """``anon`` rate: requests without credentials, per client address."""


class UserThrottle(UserRateThrottle, WindowCounterThrottle):
    """``user`` rate: authenticated requests, per user."""


class ScopedThrottle(ScopedRateThrottle, WindowCounterThrottle):
    """The rate named by a view's ``throttle_scope`` (``uploads``, ``token``)."""
