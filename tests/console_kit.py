"""Shared pieces of the console tests: a taxonomy that stresses layout, and a headless Chromium.

The browser is Debian's ``chromium`` driven through its ``chromedriver`` (packages chromium and
chromium-driver; ``.ci/run`` installs them when missing). Selenium is pointed at both binaries,
so it never tries to download a browser or a driver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LONG = (
    "Reliability, observability and incident response for the payments, checkout, ledger and settlement "
    "platforms across every region, with on-call rotations, runbooks, SLOs and error budgets for all of them"
)[:200]

TOPICS = [
    ("Web", "web pages, buttons, forms, layout and CSS in the browser"),
    ("Mobile", "the iOS and Android apps, app store releases and push notifications"),
    ("Payments", "card payments, refunds, invoices, taxes and the billing provider"),
    ("Search", "search results, ranking, indexing, filters and autocomplete"),
    ("Data", "the warehouse, ETL jobs, dashboards, reports and analytics events"),
    ("Identity", "login, single sign-on, passwords, two-factor authentication and permissions"),
    ("Network", "DNS, load balancers, TLS certificates, CDN and firewall rules"),
    ("Storage", "databases, backups, replication, disk space and object storage"),
    ("Builds", "CI pipelines, build failures, flaky tests, artifacts and releases"),
    ("Oncall", "outages, incidents, paging alerts, latency and error rates in production"),
]


def ten_long_teams(root: Path) -> Path:
    """A training-data directory with ten teams, two of them with 200-character names (no examples)."""
    (root / "examples").mkdir(parents=True, exist_ok=True)
    tables = []
    for index, (team, topic) in enumerate(TOPICS):
        name = LONG if index in (2, 9) else f"{team} team"
        tables.append(
            "\n".join(
                [
                    "[[teams]]",
                    f'id = "{team}"',
                    f'name = "{name}"',
                    f'description = "The {team} team owns {topic}."',
                    f'responsibilities = ["Fix problems with {topic}.", "Build improvements to {topic}."]',
                    "",
                ]
            )
        )
    (root / "teams.toml").write_text("\n".join(tables), encoding="utf-8")
    return root


def chromium_paths() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver, when both are installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver" if os.path.exists("/usr/lib/chromium/chromedriver") else None
    )
    if browser and driver:
        return browser, driver
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium session with a fresh profile; the browser and driver are stopped afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    assert paths is not None, "call chromium_paths() first"
    browser, driver_path = paths
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=driver_path, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        process = service.process
        with contextlib.suppress(Exception):
            driver.quit()
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
