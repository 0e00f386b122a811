"""``/ws/processing/``: job progress and ``IMAGE_UPLOADED`` events for one user.

Authentication, in order: the Django session (browser), a JWT access token in the query
string (``?token=``), or a first message ``{"type": "auth", "token": "<JWT access>"}``
within ``AUTH_TIMEOUT`` seconds. Until then the socket joins no group and receives
nothing. Once authenticated the socket joins ``user-<id>``, ``group-<id>`` for each of the
user's auth groups, and ``staff`` for staff (see :mod:`jobs.events`).

Messages sent to the client: ``{"type": "auth.ok", "user_id"}``, ``{"type":
"job.progress", "job_id", "kind", "status", "processed", "failed", "total",
"percentage"}``, ``{"type": "IMAGE_UPLOADED", "image": {...}}``, ``{"type": "error",
"code", "error"}``. Group membership is read at authentication time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from jobs.events import STAFF_GROUP, auth_group, user_group

FINAL_STATUSES = {"completed", "failed"}

AUTH_TIMEOUT = 10.0
CLOSE_UNAUTHENTICATED = 4401
SEEN_EVENTS = 256


@database_sync_to_async
def user_from_token(token: str) -> Any:
    """The active user a JWT access token names, or None."""
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    if not token or not isinstance(token, str):
        return None
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(token.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, Exception):  # noqa: BLE001 - any bad token is refused
        return None
    return user if user.is_active else None


@database_sync_to_async
def groups_for(user: Any) -> list[str]:
    groups = [user_group(user.pk)]
    groups += [auth_group(pk) for pk in user.groups.values_list("pk", flat=True)]
    if user.is_staff:
        groups.append(STAFF_GROUP)
    return groups


class TokenAuthMiddleware:
    """Authenticates a socket by ``?token=<JWT access>``; refuses a session user whose
    browser ``Origin`` is not one of ALLOWED_HOSTS (cross-site WebSocket hijacking)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        user = scope.get("user")
        if getattr(user, "is_authenticated", False) and not _origin_allowed(scope):
            user = AnonymousUser()
        token = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token")
        if token:
            user = await user_from_token(token[0]) or AnonymousUser()
        scope["user"] = user or AnonymousUser()
        return await self.inner(scope, receive, send)


def _origin_allowed(scope: dict) -> bool:
    origin = dict(scope.get("headers") or []).get(b"origin")
    if origin is None:
        return True  # not a browser: no ambient cookies to abuse
    host = origin.decode(errors="replace").split("://", 1)[-1]
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (
        ["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
    )
    return bool(domain) and validate_host(domain, allowed)


class ProcessingConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.groups_joined: list[str] = []
        self.seen: deque[str] = deque(maxlen=SEEN_EVENTS)
        self.timeout_task: asyncio.Task | None = None
        await self.accept()
        user = self.scope.get("user")
        if getattr(user, "is_authenticated", False):
            await self._authenticated(user)
        else:
            self.timeout_task = asyncio.ensure_future(self._auth_deadline())

    async def disconnect(self, code: int) -> None:
        if self.timeout_task is not None:
            self.timeout_task.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "auth" and not self.groups_joined:
            user = await user_from_token(content.get("token"))
            if user is None:
                await self.send_json(
                    {
                        "type": "error",
                        "code": "invalid_token",
                        "error": "The token is invalid or expired.",
                    }
                )
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            await self._authenticated(user)
        elif kind == "ping":
            await self.send_json({"type": "pong"})

    async def _authenticated(self, user: Any) -> None:
        if self.timeout_task is not None:
            self.timeout_task.cancel()
            self.timeout_task = None
        for group in await groups_for(user):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.send_json({"type": "auth.ok", "user_id": user.pk})

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(AUTH_TIMEOUT)
        if not self.groups_joined:
            with contextlib.suppress(Exception):
                await self.send_json(
                    {
                        "type": "error",
                        "code": "not_authenticated",
                        "error": f"Authenticate within {AUTH_TIMEOUT:.0f} seconds.",
                    }
                )
            await self.close(code=CLOSE_UNAUTHENTICATED)

    def _first_time(self, event: dict[str, Any]) -> bool:
        event_id = event.get("event_id")
        if not event_id:
            return True
        if event_id in self.seen:
            return False
        self.seen.append(event_id)
        return True

    async def job_progress(self, event: dict[str, Any]) -> None:
        if self._first_time(event) and self._advances(event):
            await self.send_json({k: v for k, v in event.items() if k != "event_id"})

    def _advances(self, event: dict[str, Any]) -> bool:
        """Several workers share a job and publish independently, so their events can
        arrive out of order: never send a job's progress backwards, nor anything after
        its final event."""
        progress = getattr(self, "progress", None)
        if progress is None:
            progress = self.progress = {}
        job_id, processed = event.get("job_id"), event.get("processed", 0)
        final = event.get("status") in FINAL_STATUSES
        seen_processed, seen_final = progress.get(job_id, (-1, False))
        if seen_final or processed < seen_processed:
            return False
        progress[job_id] = (processed, final)
        return True

    async def image_uploaded(self, event: dict[str, Any]) -> None:
        if self._first_time(event):
            await self.send_json({"type": "IMAGE_UPLOADED", "image": event["image"]})
