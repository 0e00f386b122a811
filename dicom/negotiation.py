"""Content negotiation for views that answer images, DICOM files or raw pixels.

DRF negotiates ``Accept`` against its renderers (JSON only here) and would refuse an
``Accept: image/png`` with 406 before the view runs. These views produce their own media
types; DRF renders only their JSON errors, so the negotiation always picks JSON.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation


class JsonErrorsNegotiation(BaseContentNegotiation):
    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type
