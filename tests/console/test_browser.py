"""The console in a real browser: each page's workflow end to end, layout, keyboard, escaping, screenshots.

A real ``ticket-router serve`` (admin token set, every decision sent to triage, GitHub webhooks
writing back to a local stub tracker) and Debian's headless Chromium driven by selenium. The
screenshots go to a temporary folder, or to ``$TICKET_ROUTER_CONSOLE_SCREENSHOTS`` (docs/console
to refresh the pictures in docs/CONSOLE.md).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console_kit import chromium_paths, headless_chromium, ten_long_teams
from tests.server_kit import free_port, fresh_env, start_server, stop_server
from tests.service.webhook_kit import GITHUB_SECRET, github_headers, raw

if chromium_paths() is None:
    pytest.skip(
        "no headless browser: install Debian's chromium and chromium-driver (.ci/run does) to run the console's"
        " browser tests",
        allow_module_level=True,
    )

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "browser-admin-token"
XSS = "<script>alert(1)</script>"
DESKTOP, PHONE = 1280, 360


class StubTracker:
    """A local stand-in for GitHub's REST API: answers every request with ``status`` and records it."""

    def __init__(self) -> None:
        self.status = 403
        self.requests: list[tuple[str, str, Any]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                stub.requests.append(("POST", self.path, json.loads(self.rfile.read(length) or b"null")))
                self.send_response(stub.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"[]" if stub.status < 300 else b'{"message": "Resource not accessible"}')

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubTracker]:
    tracker = StubTracker()
    yield tracker
    tracker.close()


@contextlib.contextmanager
def serve(base: Path, **environment: str) -> Iterator[str]:
    """A real server over a new data dir; stopped when the block ends, whatever happens in it."""
    port = free_port()
    process = start_server(fresh_env(base, **environment), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stub: StubTracker) -> Iterator[str]:
    with serve(
        tmp_path_factory.mktemp("console-server"),
        TICKET_ROUTER_ADMIN_TOKEN=ADMIN,
        TICKET_ROUTER_TRIAGE_MARGIN="1.0",
        TICKET_ROUTER_GITHUB_WEBHOOK_SECRET=GITHUB_SECRET,
        TICKET_ROUTER_GITHUB_TOKEN="ghp_browser",
        TICKET_ROUTER_GITHUB_API_URL=stub.url,
        TICKET_ROUTER_WRITEBACK_ATTEMPTS="1",
        TICKET_ROUTER_WRITEBACK_RETRY_SECONDS="3600",
        TICKET_ROUTER_WRITEBACK_POLL_SECONDS="0.2",
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium(DESKTOP, 900) as driver:
        driver.implicitly_wait(0)
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TICKET_ROUTER_CONSOLE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "the page") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def shoot(driver: WebDriver, folder: Path, name: str, width: int = DESKTOP) -> Path:
    """A full-page screenshot at ``width`` CSS pixels."""
    driver.set_window_size(width, 600)
    height, chrome = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(width, min(int(height) + int(chrome), 5000))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), name
    driver.set_window_size(DESKTOP, 900)
    assert path.read_bytes().startswith(b"\x89PNG")
    return path


def follow(driver: WebDriver, element: Any, keys: str | None = None) -> None:
    """Click ``element`` (or type ``keys`` into it) and wait until the page it leads to has loaded."""
    driver.execute_script("window.__left = true")
    if keys is None:
        element.click()
    else:
        element.send_keys(keys)
    wait_until(
        lambda: driver.execute_script("return !window.__left && document.readyState === 'complete'"),
        what="the next page",
    )


def no_alert(driver: WebDriver) -> None:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"a script ran: alert({text!r})")


def overflow(driver: WebDriver) -> int:
    """How many CSS pixels the page is wider than the window (0: no horizontal scrolling)."""
    return int(driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth"))


def too_wide(driver: WebDriver) -> list[str]:
    """The elements that stick out of the window (outside the tables' own scrolling boxes), for messages."""
    found: list[str] = driver.execute_script(
        "const w = window.innerWidth; return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > w + 1"
        " && (!e.closest('.table-wrap') || getComputedStyle(e).position !== 'static'))"
        ".slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 60))"
    )
    return found


def api(server: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server + path, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30, **kwargs)


def log_in(driver: WebDriver, server: str, name: str = "ana") -> None:
    driver.get(f"{server}/console/queue")
    assert "/console/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(ADMIN)
    driver.find_element(By.ID, "name").send_keys(name)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit].primary"))
    wait_until(lambda: driver.current_url.endswith("/console/queue"), what="the queue after logging in")


def focused_item(driver: WebDriver) -> str | None:
    """The id of the queue item holding the focus, if any."""
    found: str | None = driver.execute_script(
        "const item = document.activeElement && document.activeElement.closest('[data-item]');"
        " return item ? item.id : null;"
    )
    return found


def ensure_logged_in(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/console/queue")
    if "/console/login" in driver.current_url:
        log_in(driver, server)


# -- the workflows, in the order a person meets them ------------------------------------------------


def test_log_in_and_try_a_ticket(browser: WebDriver, server: str, shots: Path) -> None:
    browser.get(f"{server}/console/login")
    assert browser.execute_script(_AUDIT) == []
    shoot(browser, shots, "login")
    browser.find_element(By.ID, "token").send_keys("wrong")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit].primary"))
    assert "not the admin token" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    log_in(browser, server)
    cookies = {c["name"]: c for c in browser.get_cookies()}
    session = cookies["tr_console_session"]
    assert (session["httpOnly"], session["sameSite"], session["path"]) == (True, "Strict", "/console")

    browser.get(f"{server}/console/")
    browser.find_element(By.ID, "title").send_keys("p99 latency above 2s on checkout")
    browser.find_element(By.ID, "body").send_keys("Grafana shows 503s from the payments service since 14:05")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/console/try'] button"))
    heading = wait_until(lambda: browser.find_elements(By.ID, "result-heading"), what="the decision")[0]
    assert "SRE" in heading.text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bars meter")) == 4
    marked = [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".ticket mark")]
    assert marked, "the words behind the decision are highlighted"
    assert "model" in browser.find_element(By.CSS_SELECTOR, ".result .facts").text
    shoot(browser, shots, "try")

    browser.get(f"{server}/console/")
    browser.find_element(By.ID, "title").send_keys(XSS)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/console/try'] button"))
    wait_until(lambda: browser.find_elements(By.ID, "result-heading"), what="the decision")
    no_alert(browser)
    assert XSS in browser.find_element(By.CSS_SELECTOR, ".ticket-title").text


def test_triage_queue_by_keyboard_alone(browser: WebDriver, server: str, shots: Path) -> None:
    tickets = [
        {"title": "Checkout button does nothing on Safari", "body": "Clicking Pay shows no error in the console."},
        {"title": XSS, "body": f"The body has {XSS} too"},
        {"title": "terraform apply fails in the staging pipeline", "body": "state lock held by a dead runner"},
    ]
    ids = [api(server, "POST", "/v1/classify", json=t).headers["x-decision-id"] for t in tickets]
    browser.get(f"{server}/console/queue")
    no_alert(browser)
    items = browser.find_elements(By.CSS_SELECTOR, "[data-item]")
    assert [i.get_attribute("id") for i in items[:3]] == [f"item-{d}" for d in reversed(ids)]
    assert browser.find_element(By.ID, f"title-{ids[1]}").text == XSS
    assert "API" in items[0].text
    shoot(browser, shots, "queue")

    # Tab first reaches the skip link, then the page in order.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    # j takes the newest ticket, 2 picks the second team (DevOps): a correction, and the ticket leaves.
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    body.send_keys("j")
    assert focused_item(browser) == f"item-{ids[2]}"
    follow(browser, browser.switch_to.active_element, "2")
    notice = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".notice"), what="the correction")[0]
    assert "Corrected to DevOps" in notice.text and "by ana" in notice.text
    assert not browser.find_elements(By.ID, f"item-{ids[2]}")
    # Focus moved on to the next ticket; Enter on a focused team button corrects it too.
    assert wait_until(lambda: focused_item(browser), what="focus on the next ticket") == f"item-{ids[1]}"
    platform = browser.find_element(By.CSS_SELECTOR, f"#item-{ids[1]} button[value=Platform]")
    follow(browser, platform, Keys.ENTER)
    wait_until(lambda: not browser.find_elements(By.ID, f"item-{ids[1]}"), what="the second correction")

    follow(browser, browser.find_element(By.LINK_TEXT, "See the corrections"))
    rows = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "tbody tr"), what="the corrections")
    assert "Platform" in rows[0].text and "ana" in rows[0].text and "Console" in rows[0].text
    assert "DevOps" in rows[1].text
    no_alert(browser)
    assert "2 corrections will go into the next training" in browser.find_element(By.CSS_SELECTOR, ".facts").text
    shoot(browser, shots, "corrections")


def test_train_activate_and_roll_back(browser: WebDriver, server: str, shots: Path) -> None:
    ensure_logged_in(browser, server)
    first = api(server, "GET", "/v1/models").json()["active"]
    browser.get(f"{server}/console/models")
    follow(browser, browser.find_element(By.LINK_TEXT, "Train a new version…"))
    browser.find_element(By.ID, "note").send_keys("from the browser")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/console/models/train'] button"))
    assert "Training job" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    job_id = browser.current_url.split("job=")[1].split("#")[0]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = api(server, "GET", f"/v1/jobs/{job_id}").json()
        return job if job["status"] in {"succeeded", "refused", "failed"} else None

    job = wait_until(finished, timeout=180, what="the training job")
    assert job["status"] in {"succeeded", "refused"}, job  # refused: stored, but the gate kept it out
    second = job["result"]["version"]
    browser.get(f"{server}/console/models")
    assert "from the browser" in browser.page_source

    def activate(version: str) -> None:
        browser.get(f"{server}/console/models")
        follow(browser, browser.find_element(By.CSS_SELECTOR, f"a[href='/console/models/{version}/activate']"))
        assert browser.find_element(By.TAG_NAME, "h1").text == f"Activate {version}?"
        browser.find_element(By.ID, "force").click()
        follow(
            browser, browser.find_element(By.CSS_SELECTOR, f"form[action='/console/models/{version}/activate'] button")
        )
        assert "Activated." in browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert api(server, "GET", "/v1/models").json()["active"] == version

    if not job["result"]["activated"]:  # the gate may keep an equally good candidate out
        activate(second)
    browser.get(f"{server}/console/models")
    rollback = browser.find_element(By.PARTIAL_LINK_TEXT, "Roll back to")
    assert first in rollback.text
    follow(browser, rollback)
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Roll back to {first}?"
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/console/models/rollback'] button"))
    assert "Rolled back." in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert api(server, "GET", "/v1/models").json()["active"] == first
    activate(second)
    history = api(server, "GET", "/v1/models").json()["activations"]
    assert [(e["version"], e["kind"], e["actor"]) for e in history[:2]] == [
        (second, "activate", "ana"),
        (first, "rollback", "ana"),
    ]
    wait_until(
        lambda: browser.execute_script(
            "return [...document.querySelectorAll('.charts img')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        what="the charts",
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, ".charts img")) == 2
    shoot(browser, shots, "models")


def test_retry_a_failed_write_back(browser: WebDriver, server: str, stub: StubTracker, shots: Path) -> None:
    ensure_logged_in(browser, server)
    body = raw("github", "issues_opened")
    delivered = httpx.post(f"{server}/v1/webhooks/github", content=body, headers=github_headers(body), timeout=30)
    assert delivered.json()["write_back"] == "pending"

    def failed() -> list[Any]:
        rows: list[Any] = api(server, "GET", "/v1/writebacks?status=failed").json()["writebacks"]
        return rows

    [row] = wait_until(failed, what="the write-back to fail")
    browser.get(f"{server}/console/deliveries")
    table = browser.find_element(By.ID, "failed")
    assert "github:acme/shop#12" in table.text and "403" in table.text
    assert "classified" in browser.page_source
    shoot(browser, shots, "deliveries")
    stub.status = 201
    follow(browser, browser.find_element(By.CSS_SELECTOR, f"#writeback-{row['id']} button"))
    notice = browser.find_element(By.CSS_SELECTOR, ".notice")
    assert "Retried 1 failed write-back" in notice.text
    assert "No write-back has failed" in browser.page_source
    sent = ("POST", "/repos/acme/shop/issues/12/labels", {"labels": [row["label"]]})
    wait_until(lambda: stub.requests[-1:] == [sent], what="the retried write-back to reach the tracker")


# -- layout and accessibility -------------------------------------------------------------------------

PAGES = ["/console/", "/console/queue", "/console/models", "/console/deliveries", "/console/corrections"]

_AUDIT = """
const problems = [];
const visible = (e) => e.offsetWidth > 0 || e.offsetHeight > 0 || e.getClientRects().length > 0;
for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (!visible(field)) continue;
  const labelled = (field.labels && field.labels.length)
    || field.getAttribute('aria-label') || field.getAttribute('aria-labelledby');
  if (!labelled) problems.push('unlabelled ' + field.outerHTML.slice(0, 80));
}
for (const e of document.querySelectorAll('[tabindex]')) {
  if (parseInt(e.getAttribute('tabindex'), 10) > 0) problems.push('positive tabindex ' + e.outerHTML.slice(0, 80));
}
for (const img of document.querySelectorAll('img')) {
  if (!img.getAttribute('alt')) problems.push('image without alt');
}
for (const b of document.querySelectorAll('button, a[href]')) {
  if (visible(b) && !(b.textContent.trim() || b.getAttribute('aria-label'))) problems.push('control without a name');
}
const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (e) => {
  for (; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
for (const e of document.querySelectorAll('body *')) {
  if (!visible(e) || ['SCRIPT', 'STYLE', 'METER', 'IMG'].includes(e.tagName)) continue;
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const style = getComputedStyle(e);
  const a = lum(rgb(style.color)), b = lum(background(e));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight, 10) >= 700);
  if (ratio < (large ? 3 : 4.5)) {
    problems.push('contrast ' + ratio.toFixed(2) + ' on ' + e.tagName + ': ' + e.textContent.trim().slice(0, 40));
  }
}
return problems;
"""


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_every_page_fits_and_passes_the_audit(browser: WebDriver, server: str, shots: Path, width: int) -> None:
    ensure_logged_in(browser, server)
    browser.set_window_size(width, 900)
    try:
        for path in PAGES:
            browser.get(server + path)
            assert browser.find_element(By.TAG_NAME, "h1").text
            assert overflow(browser) <= 0, f"{path} is wider than {width} px: {too_wide(browser)}"
            assert browser.execute_script(_AUDIT) == [], path
    finally:
        browser.set_window_size(DESKTOP, 900)
    if width == PHONE:
        browser.get(server + "/console/queue")
        shoot(browser, shots, "queue-360", PHONE)


def test_ten_teams_with_long_names_keep_the_layout(
    browser: WebDriver, tmp_path_factory: pytest.TempPathFactory, shots: Path
) -> None:
    base = tmp_path_factory.mktemp("ten-teams")
    data = ten_long_teams(base / "ten")
    with serve(base, TICKET_ROUTER_TRAINING_DATA=str(data), TICKET_ROUTER_TRIAGE_MARGIN="1.0") as url:
        httpx.post(f"{url}/v1/classify", json={"title": "Refund failed for invoice 1042", "body": "card declined"})
        for width in (PHONE, DESKTOP):
            browser.set_window_size(width, 900)
            browser.get(f"{url}/console/queue")
            buttons = browser.find_elements(By.CSS_SELECTOR, "[data-item] button[name=team]")
            assert len(buttons) == 10
            inner = int(browser.execute_script("return window.innerWidth"))
            assert all(b.rect["x"] + b.rect["width"] <= inner + 1 for b in buttons), (
                f"a team button overflows at {width}"
            )
            assert overflow(browser) <= 0, f"the queue is wider than {width} px: {too_wide(browser)}"
            browser.get(f"{url}/console/")
            browser.find_element(By.ID, "title").send_keys("Refund failed for invoice 1042")
            follow(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/console/try'] button"))
            wait_until(lambda: browser.find_elements(By.ID, "result-heading"), what="the decision")
            assert len(browser.find_elements(By.CSS_SELECTOR, ".bars meter")) == 10
            assert overflow(browser) <= 0, f"the decision is wider than {width} px: {too_wide(browser)}"
            for path in ("/console/models", "/console/corrections", "/console/deliveries"):
                browser.get(url + path)
                assert overflow(browser) <= 0, (
                    f"{path} is wider than {width} px with ten long names: {too_wide(browser)}"
                )
        browser.set_window_size(DESKTOP, 900)
        browser.get(f"{url}/console/queue")
        shoot(browser, shots, "queue-ten-teams", PHONE)
