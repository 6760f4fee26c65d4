"""Fetch the texts of the benchmark sets of real tickets from the GitHub API.

Only the addresses and our labels are kept in the repository; the tickets' texts belong to
their authors, so they are fetched into each set's ``texts.jsonl`` (git-ignored) when needed:

- ``public_issues``: the 156 chosen, clearly owned issues (``bench/public_issues/labels.jsonl``);
- ``real_stream``: the issues and pull requests taken as they come (``bench/real_stream/items.jsonl``);
- ``org_history``: one organisation's tickets (``bench/org_history/items.jsonl``).

Needs network access; ``GITHUB_TOKEN`` raises the API's rate limit (60 requests an hour without
it). Tickets already fetched are skipped, so an interrupted run can be resumed. A pull request
is fetched through the issues endpoint, which serves both.

    python -m bench.fetch_public [public_issues|real_stream|org_history ...]   (all by default)
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import httpx
import msgspec

BENCH = Path(__file__).resolve().parent
HERE = BENCH / "public_issues"
LABELS = HERE / "labels.jsonl"
TEXTS = HERE / "texts.jsonl"
SETS = {
    "public_issues": HERE / "labels.jsonl",
    "real_stream": BENCH / "real_stream" / "items.jsonl",
    "org_history": BENCH / "org_history" / "items.jsonl",
}
_TICKET_URL = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/(?:issues|pull)/(\d+)$")
BODY_LIMIT = 4000


class Label(msgspec.Struct, frozen=True):
    """One labelled issue: where it is and which team owns it, by docs/TAXONOMY.md."""

    id: str
    url: str
    team: str
    rationale: str = ""


class Address(msgspec.Struct, frozen=True):
    """Where a ticket of a set is (the other fields of the set's file are not needed here)."""

    id: str
    url: str


class Text(msgspec.Struct, frozen=True):
    """A ticket's title and first post, as fetched."""

    id: str
    title: str
    body: str = ""


def read_labels() -> list[Label]:
    """The public-issues sample's labels."""
    decoder = msgspec.json.Decoder(Label)
    return [decoder.decode(line) for line in LABELS.read_bytes().splitlines() if line.strip()]


def read_texts(path: Path = TEXTS) -> dict[str, Text]:
    """The texts fetched so far, by ticket id."""
    if not path.exists():
        return {}
    decoder = msgspec.json.Decoder(Text)
    return {t.id: t for t in (decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip())}


def fetch(client: httpx.Client, address: Address) -> Text | None:
    """One ticket's title and first post; None (with a message) when it cannot be had."""
    match = _TICKET_URL.match(address.url)
    if match is None:
        print(f"{address.id}: not a GitHub issue or pull request URL: {address.url}", file=sys.stderr)
        return None
    owner, repo, number = match.groups()
    for attempt in range(4):
        response = client.get(f"/repos/{owner}/{repo}/issues/{number}")
        if response.status_code == 200:
            issue = response.json()
            return Text(address.id, issue.get("title") or "", (issue.get("body") or "")[:BODY_LIMIT])
        if response.status_code in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
            reset = int(response.headers.get("x-ratelimit-reset", time.time() + 60))
            raise SystemExit(f"GitHub API rate limit reached; set GITHUB_TOKEN or resume after {time.ctime(reset)}")
        if response.status_code >= 500:
            time.sleep(2**attempt)
            continue
        print(f"{address.id}: {address.url} answered {response.status_code}; skipped", file=sys.stderr)
        return None
    return None


def fetch_set(name: str) -> None:
    """Fetch every missing text of one set into its ``texts.jsonl``."""
    listing = SETS[name]
    texts_path = listing.parent / "texts.jsonl"
    decoder = msgspec.json.Decoder(Address)
    addresses = [decoder.decode(line) for line in listing.read_bytes().splitlines() if line.strip()]
    have = read_texts(texts_path)
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token := os.environ.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    encoder = msgspec.json.Encoder()
    fetched = 0
    with (
        httpx.Client(base_url="https://api.github.com", headers=headers, timeout=20) as client,
        texts_path.open("ab") as out,
    ):
        for address in addresses:
            if address.id in have:
                continue
            text = fetch(client, address)
            if text is not None:
                out.write(encoder.encode(text) + b"\n")
                out.flush()
                fetched += 1
    print(f"{name}: fetched {fetched}; {len(have) + fetched} of {len(addresses)} tickets in {texts_path}")


def main(names: list[str]) -> None:
    """Fetch the named sets (all of them by default)."""
    unknown = sorted(set(names) - set(SETS))
    if unknown:
        raise SystemExit(f"unknown set(s) {unknown}; choose from {sorted(SETS)}")
    for name in names or list(SETS):
        fetch_set(name)


if __name__ == "__main__":
    main(sys.argv[1:])
