"""Fetch the texts of the public issues in ``bench/public_issues/labels.jsonl`` from the GitHub API.

Only the URLs and our labels are kept in the repository; the issues' texts belong to their
authors, so they are fetched into ``bench/public_issues/texts.jsonl`` (not committed) when
needed. Needs network access; ``GITHUB_TOKEN`` raises the API's rate limit (60 requests an
hour without it). Issues already fetched are skipped, so an interrupted run can be resumed.

    python -m bench.fetch_public
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import httpx
import msgspec

HERE = Path(__file__).resolve().parent / "public_issues"
LABELS = HERE / "labels.jsonl"
TEXTS = HERE / "texts.jsonl"
_ISSUE_URL = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/issues/(\d+)$")


class Label(msgspec.Struct, frozen=True):
    """One labelled issue: where it is and which team owns it, by TAXONOMY.md."""

    id: str
    url: str
    team: str
    rationale: str = ""


class Text(msgspec.Struct, frozen=True):
    """An issue's title and first post, as fetched."""

    id: str
    title: str
    body: str = ""


def read_labels() -> list[Label]:
    decoder = msgspec.json.Decoder(Label)
    return [decoder.decode(line) for line in LABELS.read_bytes().splitlines() if line.strip()]


def read_texts() -> dict[str, Text]:
    if not TEXTS.exists():
        return {}
    decoder = msgspec.json.Decoder(Text)
    return {t.id: t for t in (decoder.decode(line) for line in TEXTS.read_bytes().splitlines() if line.strip())}


def fetch(client: httpx.Client, label: Label) -> Text | None:
    match = _ISSUE_URL.match(label.url)
    if match is None:
        print(f"{label.id}: not a GitHub issue URL: {label.url}", file=sys.stderr)
        return None
    owner, repo, number = match.groups()
    for attempt in range(4):
        response = client.get(f"/repos/{owner}/{repo}/issues/{number}")
        if response.status_code == 200:
            issue = response.json()
            return Text(label.id, issue.get("title") or "", (issue.get("body") or "")[:4000])
        if response.status_code in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
            reset = int(response.headers.get("x-ratelimit-reset", time.time() + 60))
            raise SystemExit(f"GitHub API rate limit reached; set GITHUB_TOKEN or resume after {time.ctime(reset)}")
        if response.status_code >= 500:
            time.sleep(2**attempt)
            continue
        print(f"{label.id}: {label.url} answered {response.status_code}; skipped", file=sys.stderr)
        return None
    return None


def main() -> None:
    labels = read_labels()
    have = read_texts()
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token := os.environ.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    encoder = msgspec.json.Encoder()
    fetched = 0
    with (
        httpx.Client(base_url="https://api.github.com", headers=headers, timeout=20) as client,
        TEXTS.open("ab") as out,
    ):
        for label in labels:
            if label.id in have:
                continue
            text = fetch(client, label)
            if text is not None:
                out.write(encoder.encode(text) + b"\n")
                out.flush()
                fetched += 1
    print(f"fetched {fetched}; {len(have) + fetched} of {len(labels)} issues in {TEXTS}")


if __name__ == "__main__":
    main()
