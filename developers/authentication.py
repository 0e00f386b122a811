"""``Authorization: ApiKey <prefix>.<secret>``: a developer's key acts as their user.

Keys are stored hashed by djangorestframework-api-key (SHA-512 of a high-entropy secret);
the lookup is one indexed query on the prefix plus a constant-time comparison. A revoked,
expired or deleted key stops working on the next request: nothing is cached.

``Bearer`` headers are left to simplejwt's ``JWTAuthentication``, which in turn ignores
``ApiKey`` headers, so the two never collide.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from developers.models import DeveloperAPIKey

logger = logging.getLogger(__name__)

KEYWORDS = {"apikey", "api-key"}
MSG_MALFORMED = "Malformed API key header: use 'Authorization: ApiKey <key>'."
MSG_INVALID = "Invalid API key."
MSG_REVOKED = "This API key has been revoked."
MSG_EXPIRED = "This API key has expired."
MSG_INACTIVE = "The account owning this API key is disabled."
MAX_KEY_LENGTH = 200


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates as the key's developer: ``request.user`` is the profile's user and
    ``request.auth`` the :class:`DeveloperAPIKey`. Failures are 401 JSON, never 500."""

    keyword = "ApiKey"

    def authenticate(self, request: Request) -> tuple[Any, DeveloperAPIKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.strip().partition(" ")
        if scheme.lower() not in KEYWORDS:
            return None
        key = raw.strip()
        if not key or " " in key or "." not in key or len(key) > MAX_KEY_LENGTH:
            raise exceptions.AuthenticationFailed(MSG_MALFORMED)
        api_key = api_key_lookup(key=key)
        return api_key.profile.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def api_key_lookup(*, key: str) -> DeveloperAPIKey:
    """The usable key for a full ``<prefix>.<secret>`` string, or AuthenticationFailed."""
    prefix = key.partition(".")[0]
    api_key = DeveloperAPIKey.objects.select_related("profile__user").filter(prefix=prefix).first()
    if api_key is None or not api_key.is_valid(key):
        logger.info("api key refused: unknown prefix or wrong secret")
        raise exceptions.AuthenticationFailed(MSG_INVALID)
    if api_key.revoked:
        raise exceptions.AuthenticationFailed(MSG_REVOKED)
    if api_key.has_expired:
        raise exceptions.AuthenticationFailed(MSG_EXPIRED)
    if not api_key.profile.user.is_active:
        raise exceptions.AuthenticationFailed(MSG_INACTIVE)
    return api_key


def api_key_from_request(request: Any) -> DeveloperAPIKey | None:
    """The API key a request was authenticated with, or None (JWT, session, anonymous).

    Accepts a DRF ``Request`` or the Django ``HttpRequest`` behind it; never raises.
    """
    try:
        auth = getattr(request, "auth", None)
    except exceptions.APIException:
        return None
    return auth if isinstance(auth, DeveloperAPIKey) else None


class CachedUserJWTAuthentication(JWTAuthentication):
    """simplejwt's ``JWTAuthentication`` with the token's user row kept in process memory
    for ``LIGHTBOX_AUTH_USER_CACHE_SECONDS`` (default 5): a JWT request no longer costs a
    database query for the user. A saved or deleted user is dropped from this process's
    cache at once (signals); other processes see a deactivation, a password change or a
    staff flag change within that many seconds. 0 turns the cache off.

    A token's signature and claims are also checked once per process: a client sends the
    same access token with every request until it expires, and nothing but the clock can
    change its verdict (access tokens are never blacklisted). Later requests with it only
    check its expiry."""

    def get_validated_token(self, raw_token: bytes) -> Any:
        key = (raw_token, jwt_settings.SIGNING_KEY)
        token = _validated_tokens.get(key)
        if token is not None:
            try:
                token.check_exp(current_time=jwt_tokens.aware_utcnow())  # simplejwt's clock
                return token
            except TokenError:
                _validated_tokens.pop(key, None)  # expired: simplejwt says so below
        token = super().get_validated_token(raw_token)
        if len(_validated_tokens) >= MAX_VALIDATED_TOKENS:
            _validated_tokens.clear()
        _validated_tokens[key] = token
        return token

    def get_user(self, validated_token: Any) -> Any:
        ttl = settings.LIGHTBOX_AUTH_USER_CACHE_SECONDS
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        if ttl <= 0 or user_id is None or jwt_settings.CHECK_REVOKE_TOKEN:
            return super().get_user(validated_token)
        now = time.monotonic()
        hit = _user_rows.get(user_id)
        if hit is None or hit[0] < now:
            user = super().get_user(validated_token)  # the checks: exists, active, revoked
            _user_rows[user_id] = (now + ttl, [getattr(user, f) for f in _user_fields()])
            return user
        return get_user_model().from_db("default", _user_fields(), hit[1])  # a fresh instance


_user_rows: dict[Any, tuple[float, list[Any]]] = {}
_validated_tokens: dict[tuple[bytes, Any], Any] = {}
MAX_VALIDATED_TOKENS = 10_000


def _user_fields() -> list[str]:
    return [f.attname for f in get_user_model()._meta.concrete_fields]


def user_cache_forget(sender: Any, instance: Any, **kwargs: Any) -> None:
    _user_rows.pop(getattr(instance, "pk", None), None)
    _user_rows.pop(str(getattr(instance, "pk", None)), None)
