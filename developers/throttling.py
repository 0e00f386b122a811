"""Rate limits as one counter per client, rate and window.

DRF's stock throttles keep, per client, the list of every request time in the window and
read and rewrite it (pickled) on each request: at the default 10,000 requests/hour that is
a list of up to 10,000 floats moved to and from Redis per request, once per throttle class.
Here each limit is one integer: the window opens at the client's first request and lasts the
rate's duration. :class:`RateLimits` applies every rate of a request (``anon`` without
credentials, ``user``, and the view's ``throttle_scope``) with one Redis round trip (``INCR``
and ``EXPIRE ... NX`` per limit, pipelined); with another cache (tests, no Redis) it uses the
cache API. Same settings (``DEFAULT_THROTTLE_RATES``), same 429 with ``Retry-After`` (seconds
until the window closes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache.backends.redis import RedisCacheClient
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


@dataclass(frozen=True)
class Limit:
    key: str
    num_requests: int
    duration: int


class RateLimits(BaseThrottle):
    """Every rate that applies to a request, counted in one round trip."""

    def allow_request(self, request: Any, view: Any) -> bool:
        limits = self._limits(request, view)
        if not limits:
            return True
        self.now = time.time()
        counts = limits_count(limits, now=self.now)
        self.exceeded = [lim for lim, n in zip(limits, counts, strict=True) if n > lim.num_requests]
        return not self.exceeded

    def wait(self) -> float:
        return max(seconds_left(lim, now=self.now) for lim in self.exceeded)

    def _limits(self, request: Any, view: Any) -> list[Limit]:
        user = getattr(request, "user", None)
        authenticated = bool(user and user.is_authenticated)
        scopes = self._scopes(authenticated, getattr(view, "throttle_scope", None))
        ident = user.pk if authenticated else self.get_ident(request)
        rates = SimpleRateThrottle.THROTTLE_RATES
        limits = []
        for name in scopes:
            if name not in rates:
                if name in ("anon", "user"):
                    continue  # a default rate left out of the settings: not limited
                raise ImproperlyConfigured(f"No default throttle rate set for '{name}' scope")
            if rates[name] is None:
                continue
            num, duration = SimpleRateThrottle.parse_rate(self, rates[name])  # type: ignore[arg-type]
            limits.append(Limit(f"throttle_{name}_{ident}:count", num, duration))
        return limits

    def _scopes(self, authenticated: bool, view_scope: str | None) -> list[str]:
        scopes = [] if authenticated else ["anon"]
        scopes.append("user")
        return [*scopes, view_scope] if view_scope else scopes


class ScopedThrottle(RateLimits):
    """Only the view's ``throttle_scope`` rate (views that opt out of the others: token)."""

    def _scopes(self, authenticated: bool, view_scope: str | None) -> list[str]:
        return [view_scope] if view_scope else []


# --- counting ----------------------------------------------------------------------------


def _cache() -> Any:
    return SimpleRateThrottle.cache  # looked up each time: tests swap it


def _on_redis(cache: Any) -> bool:
    return isinstance(getattr(cache, "_cache", None), RedisCacheClient)


def limits_count(limits: list[Limit], *, now: float) -> list[int]:
    """Add one request to each limit's window; the counts after it."""
    cache = _cache()
    if not _on_redis(cache):
        return [_cache_count(cache, lim, now) for lim in limits]
    keys = [cache.make_and_validate_key(lim.key) for lim in limits]
    pipe = cache._cache.get_client(keys[0], write=True).pipeline(transaction=False)
    for key, lim in zip(keys, limits, strict=True):
        pipe.incr(key)
        pipe.expire(key, lim.duration, nx=True)  # set once, when the window opens
    replies = pipe.execute()
    return [int(n) for n in replies[0::2]]


def _cache_count(cache: Any, lim: Limit, now: float) -> int:
    try:
        return cache.incr(lim.key)
    except ValueError:  # no open window: open one
        if cache.add(lim.key, 1, lim.duration):
            cache.set(f"{lim.key}:opened", now, lim.duration)
            return 1
        return cache.incr(lim.key)  # another request opened it first


def seconds_left(lim: Limit, *, now: float) -> float:
    cache = _cache()
    if _on_redis(cache):
        key = cache.make_and_validate_key(lim.key)
        ttl = cache._cache.get_client(key).ttl(key)
        return float(max(1, ttl)) if ttl and ttl > 0 else float(lim.duration)
    opened = cache.get(f"{lim.key}:opened")
    if opened is None:
        return float(lim.duration)
    return max(1.0, opened + lim.duration - now)
