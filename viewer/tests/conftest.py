"""Fixtures of the viewer tests: one headless Chromium per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from viewer.tests.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
