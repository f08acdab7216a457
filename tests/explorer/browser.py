"""A real headless browser (Debian's chromium through its chromedriver) and a real ``bmoe explorer`` process.

Nothing is downloaded at run time: the driver is the one on PATH (``apt-get install chromium
chromium-driver``), given to selenium explicitly. JavaScript is switched off, so every page the
tests read is the server's HTML and inline SVG alone. ``ExplorerProcess`` runs ``python -m bmoe
explorer ... --port 0``, reads the URL it prints, and always stops it.
"""

from __future__ import annotations

import base64
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = ("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
           if CHROMIUM is None or CHROMEDRIVER is None else None)
START_TIMEOUT_S = 120.0


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.binary_location = str(CHROMIUM)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_for_text(driver: webdriver.Chrome, element_id: str, needle: str, timeout: float = 30.0) -> str:
    """The element's text once it holds ``needle``, across the page reloading itself."""
    def holds(d: webdriver.Chrome) -> str | bool:
        text = d.find_element(By.ID, element_id).text
        return text if needle in text else False
    return str(WebDriverWait(driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
               .until(holds))


def follow(driver: webdriver.Chrome, css: str, attempts: int = 10) -> None:
    """Go where the first link matching ``css`` points, on a page that may reload itself meanwhile."""
    for _ in range(attempts):
        try:
            href = driver.find_element(By.CSS_SELECTOR, css).get_attribute("href")
        except (NoSuchElementException, StaleElementReferenceException):
            time.sleep(0.2)
            continue
        driver.get(str(href))
        return
    raise AssertionError(f"no link {css!r} on {driver.current_url}")


def full_page_png(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page (not only the window) as a PNG, through the DevTools protocol (no script on the page)."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


class ExplorerProcess:
    """``bmoe explorer`` as a subprocess on a free port."""

    def __init__(self, *args: str | Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bmoe", "explorer", *map(str, args), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        self.first_line = self._first_line()
        self.url = self.first_line.split(" at ", 1)[1].split("/ ", 1)[0]

    def _first_line(self) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if selector.select(timeout=0.5):
                    line = self.proc.stdout.readline()
                    if line:
                        return line.strip()
                if self.proc.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"bmoe explorer did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
