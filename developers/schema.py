"""OpenAPI description of the authentication schemes: `ApiKey <key>` and our Bearer JWT."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "developers.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`ApiKey <key>`: a key created at `POST /api-keys/` (shown once).",
        }


class CachedUserJWTScheme(SimpleJWTScheme):
    """Our JWT authentication is simplejwt's with a user cache: the same Bearer scheme."""

    target_class = "developers.authentication.CachedUserJWTAuthentication"
