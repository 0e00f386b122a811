"""``POST /api/token/`` with ``email`` + ``password`` (seed 003): emails match whatever
their case, since :class:`accounts.models.UserManager` stores them lower-cased."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

MSG_BAD_CREDENTIALS = "No active account found with the given email and password."


class EmailTokenObtainPairSerializer(TokenObtainPairSerializer):
    default_error_messages = {"no_active_account": _(MSG_BAD_CREDENTIALS)}

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        attrs[self.username_field] = str(attrs[self.username_field]).strip().lower()
        return super().validate(attrs)
