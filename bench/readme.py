"""The README from a clean clone: `make run` in a temporary clone of the committed tree, then the
README's curl examples against it and the CLI from another directory. The fast half of this check
is tests/test_readme.py (run in the suite); this half installs and trains, so it lives here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import ROOT, console, free_port, table
from tests.test_readme import curl_calls, fill_in

TOKEN, ADMIN = "readme-token", "readme-admin"


def _wait_ready(url: str, process: subprocess.Popen[bytes], limit: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"make run stopped with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("no answer from /readyz")


def run() -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-readme-"))
    clone = base / "clone"
    figures: dict[str, float] = {}
    rows: list[list[str]] = []
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", head.stdout.strip()], cwd=clone, check=True)
        started = time.perf_counter()
        install = subprocess.run(["make", "-C", str(clone), ".venv/.installed-run"], capture_output=True, text=True)
        figures["install_s"] = time.perf_counter() - started
        # setuptools notes every editable install ("Editable installation."): not about this project.
        warned = [line for line in (install.stdout + install.stderr).splitlines() if "BuildBackendWarning" in line]
        ours = [line for line in warned if "Editable installation" not in line]
        note = f"{len(ours)} warning(s) about the project, {len(warned) - len(ours)} from setuptools' editable mode"
        rows.append(["install (`make run`'s first step)", f"{figures['install_s']:.0f} s", note])
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKET_ROUTER_", "VIRTUAL_ENV"))} | {
            "TICKET_ROUTER_PORT": str(port),
            "TICKET_ROUTER_ADMIN_TOKEN": ADMIN,
            "TICKET_ROUTER_API_TOKENS": TOKEN,
            "TICKET_ROUTER_RATE_LIMIT": "off",
        }
        started = time.perf_counter()
        log = (base / "make-run.log").open("wb")
        server = subprocess.Popen(
            ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            figures["first_answer_s"] = _wait_ready(url, server, 600)
            rows.append(
                ["first start: training, then /readyz", f"{figures['first_answer_s']:.0f} s", "<= 15 s of training"]
            )
            ok, total = _replay(url)
            figures["curl_ok"], figures["curl_total"] = ok, total
            rows.append(["README curl examples answered as it says", f"{ok} of {total}", ""])
            cli_ok = _cli_elsewhere(clone, base, env)
            rows.append(["the CLI from another directory (classify, label)", "ok" if cli_ok else "FAILED", ""])
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    console.print(table("The README from a clean clone", ["step", "result", "note"], rows))
    return figures


def _replay(url: str) -> tuple[int, int]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    ticket = {"title": "Slow queries on the reporting dashboard after the release"}
    decision = httpx.post(f"{url}/v1/classify", json=ticket, headers=auth)
    job = httpx.post(f"{url}/v1/models", json={"activate": False}, headers=admin).json()
    while job["status"] in {"queued", "running"}:
        time.sleep(1)
        job = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=admin).json()
    version = httpx.get(f"{url}/v1/models", headers=auth).json()["active"]
    values = {"$TOKEN": TOKEN, "$ADMIN": ADMIN, "<id>": decision.headers["x-decision-id"], "<job>": job["id"]}
    values["<version>"] = version
    ok = total = 0
    for method, path, headers, body in curl_calls():
        if "authorization" not in headers:
            headers = {**headers, "authorization": f"Bearer {TOKEN}"}
        response = httpx.request(
            method,
            url + fill_in(path, values),
            headers={k: fill_in(v, values) for k, v in headers.items()},
            content=None if body is None else fill_in(body, values).encode(),
            timeout=60,
        )
        total += 1
        ok += response.status_code < 400 or (method, path) == ("POST", "/v1/models/rollback")
        if method == "POST" and path == "/v1/models":
            job = response.json()
            while job["status"] in {"queued", "running"}:
                time.sleep(1)
                job = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=admin).json()
    return ok, total


def _cli_elsewhere(clone: Path, base: Path, env: dict[str, str]) -> bool:
    elsewhere = base / "downloads"
    elsewhere.mkdir()
    (elsewhere / "export.csv").write_bytes(b"\xef\xbb\xbfIssue key,Summary,Description\nOPS-1,Disk full on db-1,\n")
    cli = str(clone / ".venv" / "bin" / "ticket-router")
    one = subprocess.run([cli, "classify", "Disk full on db-1"], cwd=elsewhere, env=env, capture_output=True)
    label = subprocess.run([cli, "label", "export.csv", "-o", "out.csv"], cwd=elsewhere, env=env, capture_output=True)
    return one.returncode == 0 and label.returncode == 0 and "OPS-1" in (elsewhere / "out.csv").read_text()


if __name__ == "__main__":
    run()
