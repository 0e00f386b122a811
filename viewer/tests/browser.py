"""Playwright helpers for the viewer's browser tests: Debian's Chromium, screenshots under
``test-artifacts/screenshots/`` and a page that records every console error."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

CHROMIUM = Path(os.environ.get("LIGHTBOX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
UHD = {"width": 3840, "height": 2160}
PASSWORD = "pass-1234-word"

skip_without_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
)


class Session:
    """A browser tab plus the console errors it produced."""

    def __init__(self, page: Any, base_url: str, name: str) -> None:
        self.page, self.base_url, self.name = page, base_url, name
        self.errors: list[str] = []
        self.step = 0
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shot(self, label: str) -> Path:
        self.step += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.name}-{self.step:02d}-{label}".lower())
        path = SCREENSHOTS / f"{slug}.png"
        self.page.screenshot(path=str(path))
        return path

    def login(self, email: str, password: str = PASSWORD) -> None:
        self.goto("/viewer/login/")
        self.page.fill("#id_username", email)
        self.page.fill("#id_password", password)
        self.shot("login")
        self.page.click("#login-submit")
        self.page.wait_for_url(re.compile(r".*/viewer/$"))


def open_session(chromium: Any, live_server: Any, name: str, viewport: dict | None = None) -> Any:
    context = chromium.new_context(viewport=viewport or LAPTOP, accept_downloads=True)
    return context, Session(context.new_page(), live_server.url, name)
