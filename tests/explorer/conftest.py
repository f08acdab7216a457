"""One headless chromium for every explorer test (JavaScript off); skipped, saying why, without it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.explorer.browser import MISSING, chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    if MISSING is not None:
        pytest.skip(MISSING)
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()
