"""The project documents itself: every file its docs cite is in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
CITED = re.compile(r"`([A-Za-z0-9_.][\w./-]*/[\w.-]+\.(?:md|py|toml|ya?ml|jsonl?|conf|txt|cfg))`")
RUN_TIME = ("models/", "var/")  # files the service writes in its data dir
USER_MADE = {"training_data/rules.toml"}  # files the documents tell a user to write (none is shipped)
OUTSIDE = re.compile(r"(?<![\w.])(?:shared/|seed/|/work/|roles\.txt)")


def documents() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    chosen = [ROOT / p for p in tracked if p.endswith((".md", "teams.toml"))]
    return [*chosen, *(p for p in [ROOT / "README.md"] if p not in chosen)]


def ignored(path: Path) -> bool:
    """Files the repository makes but does not keep (fetched texts, run-time data)."""
    result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
    return result.returncode == 0


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_document_cites_only_files_in_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    problems = [f"cites {m.group(0)!r}, outside the repository" for m in OUTSIDE.finditer(text)]
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"links to {target}, outside the repository")
        elif not path.exists():
            problems.append(f"links to {target}, which does not exist")
    for cited in CITED.findall(text):
        if cited.startswith(RUN_TIME) or cited in USER_MADE:
            continue
        # Paths are given from the repository, the document's folder, or service/ (as ARCHITECTURE.md does).
        candidates = [ROOT / cited, doc.parent / cited, ROOT / "service" / cited]
        if any(c.exists() or ignored(c) for c in candidates):
            continue
        problems.append(f"cites `{cited}`, which is not in the repository")
    assert not problems, f"{doc.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_license_pyproject_promises_is_there() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
