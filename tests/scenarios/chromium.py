"""A real browser for the lab tests: Debian's headless Chromium, driven through its chromedriver by Selenium.

It trusts the lab CA the way a person's machine trusts an internal CA: the CA is added to an NSS database (made with
``certutil``) in the browser's own home directory, which is where Chromium on Linux reads locally added trust
anchors. Certificate checking stays fully on (no ``--ignore-certificate-errors``): a certificate that does not chain
to the lab CA, or does not name the host, stops the browser on its interstitial page, as it would stop a person.

``lab/bootstrap.sh`` installs ``chromium``, ``chromium-driver`` and ``libnss3-tools``. Selenium is given both paths,
so it never looks for (or downloads) a browser or driver of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Page loads and form posts against the lab on a loaded machine: generous, and only ever a ceiling.
PAGE_S = 30.0


def missing_tools() -> list[str]:
    """What this machine lacks to run the real browser (empty when it can)."""
    wanted = {"chromium": CHROMIUM, "chromedriver": CHROMEDRIVER, "certutil": shutil.which("certutil") or ""}
    return [name for name, path in wanted.items() if not (path and os.access(path, os.X_OK))]


def require_tools() -> None:
    """Skip on a developer's machine without the browser; in CI (which runs the bootstrap) its absence fails."""
    missing = missing_tools()
    if not missing:
        return
    reason = (f"{', '.join(missing)} not installed: run `bash lab/bootstrap.sh` as root (it installs chromium, "
              "chromium-driver and libnss3-tools)")
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the real-browser test, but {reason}")
    pytest.skip(reason)


def _trust(home: Path, ca_file: Path) -> None:
    """An NSS database in ``home`` whose one added anchor is the lab CA, trusted for TLS servers only."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "resetbot lab CA", "-t", "C,,", "-i", str(ca_file)],
                   check=True, capture_output=True)


@contextmanager
def chromium(home: Path, ca_file: Path) -> Iterator[WebDriver]:
    """One headless Chromium for a test module, with ``home`` as its HOME (profile, NSS database, driver log)."""
    _trust(home, ca_file)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", f"--user-data-dir={home / 'profile'}", "--no-proxy-server",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start as root with its sandbox (CI runs as root)
    # Warnings and errors only: at its default level the driver logs every command, the typed password included.
    service = Service(CHROMEDRIVER, service_args=["--log-level=WARNING"], env={**os.environ, "HOME": str(home)},
                      log_output=str(home / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(PAGE_S)
    try:
        yield browser
    finally:
        browser.quit()


def wait_for(browser: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    """Until ``condition`` holds in the browser (an element, a page), or fail saying what never came and where the
    browser was instead. Elements that vanish mid-navigation only mean "not yet"."""
    try:
        WebDriverWait(browser, PAGE_S, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                      ).until(condition)
    except TimeoutException as err:
        raise AssertionError(f"{what} never came; the browser is on {browser.current_url}: "
                             f"{browser.page_source[:2000]}") from err
