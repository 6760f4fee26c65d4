"""Batch labelling core: readers for every format, bad rows, ordering across processes, atomic output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from model.batch import StoredClassifier, label_rows
from model.dataset import load_examples
from model.errors import DataError
from model.files import atomic_output
from model.registry import Registry
from model.taxonomy import load_taxonomy
from model.training import train
from service.backlog import Agreement, Columns, detect_format, read_rows
from service.backlog_output import write_csv, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> StoredClassifier:
    registry = Registry(tmp_path_factory.mktemp("registry"))
    manifest = registry.save(train(TAXONOMY, MINI), TAXONOMY)
    return StoredClassifier(registry.root, manifest.version)


def rows_of(text: str | bytes, fmt: str, columns: Columns | None = None) -> list:  # type: ignore[type-arg]
    data = text.encode() if isinstance(text, str) else text
    return list(read_rows(io.BytesIO(data), fmt, columns))  # type: ignore[arg-type]


def test_jsonl_rows_with_ids_text_and_labels() -> None:
    rows = rows_of(
        '{"id": 1, "title": "Disk full", "body": "db-1"}\n\n'
        '{"text": "CI fails", "team": "DevOps"}\n'
        '{"id": "x", "title": "Upgrade EKS", "labels": ["bug", {"name": "team:platform"}]}\n',
        "jsonl",
    )
    assert [(r.line, r.id, r.title, r.body) for r in rows] == [
        (1, "1", "Disk full", "db-1"),
        (3, None, "CI fails", None),
        (4, "x", "Upgrade EKS", None),
    ]
    assert rows[1].team == "DevOps"
    assert rows[2].labels == ("bug", "team:platform")
    assert all(r.error is None for r in rows)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not a JSON object"),
        ('["a list"]', "not a JSON object"),
        ('{"id": 1, "title": "", "body": "  "}', "empty text"),
        ('{"id": 1}', "no 'title' or 'body' column"),
        ('{"title": "\\ud800 lone surrogate"', "not a JSON object"),
    ],
)
def test_bad_jsonl_rows_become_errors_and_reading_goes_on(line: str, error: str) -> None:
    rows = rows_of(f'{{"title": "first"}}\n{line}\n{{"title": "third"}}\n', "jsonl")
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[0].error is None and rows[2].error is None
    assert error in (rows[1].error or "")


def test_undecodable_bytes_are_an_error_row() -> None:
    rows = rows_of(b'{"title": "ok"}\n{"title": "\xff\xfe"}\n', "jsonl")
    assert rows[1].error and "UTF-8" in rows[1].error


def test_csv_with_chosen_columns_and_bad_rows() -> None:
    text = (
        "key,summary,details,owner\nA-1,Disk full,on db-1,SRE\nA-2,,,\n"
        'A-3,"Upgrade, cluster",x,Platform,extra\nA-4,CI fails,,\n'
    )
    columns = Columns(id="key", title="summary", body="details", team="owner")
    rows = rows_of(text, "csv", columns)
    assert [(r.line, r.id, r.title, r.team) for r in rows if r.error is None] == [
        (2, "A-1", "Disk full", "SRE"),
        (5, "A-4", "CI fails", None),
    ]
    assert "empty text" in (rows[1].error or "")
    assert "5 fields where the header has 4" in (rows[2].error or "")


def test_csv_without_a_text_column_is_refused_before_any_row() -> None:
    with pytest.raises(DataError, match=r"no 'title' or 'body' column .* the header has 'number', 'summary'"):
        rows_of("number,summary\n1,Disk full\n", "csv")
    assert rows_of("number,summary\n1,Disk full\n", "csv", Columns(text="summary"))[0].title == "Disk full"


def test_gh_issue_list_json() -> None:
    issues = [
        {
            "number": 12,
            "title": "Release workflow fails",
            "body": "npm publish 403",
            "labels": [{"name": "team:devops"}],
        },
        {"number": 13, "title": "Button misaligned", "body": None, "labels": []},
        "not an issue",
    ]
    rows = rows_of(json.dumps(issues), "gh-json")
    assert [(r.id, r.title, r.labels) for r in rows[:2]] == [
        ("12", "Release workflow fails", ("team:devops",)),
        ("13", "Button misaligned", ()),
    ]
    assert rows[2].error == "not a JSON object"
    assert rows_of("{", "gh-json")[0].error.startswith("not a JSON array")  # type: ignore[union-attr]


def test_gitlab_and_jira_csv_exports() -> None:
    gitlab = (
        "Title,Description,Issue ID,IID,URL,State,Labels\n"
        'Pipeline fails on main,job 123 exit 1,9,4,https://gitlab.example.com/x/-/issues/4,opened,"bug,team::devops"\n'
    )
    assert detect_format("issues.csv", gitlab) == "gitlab-csv"
    [row] = rows_of(gitlab, "gitlab-csv")
    assert (row.id, row.title, row.body, row.labels) == (
        "9",
        "Pipeline fails on main",
        "job 123 exit 1",
        ("bug", "team::devops"),
    )
    jira = "Summary,Issue key,Issue id,Description,Labels,Labels\nDisk full,OPS-7,10007,db-1 at 98%,team-sre,oncall\n"
    assert detect_format("export.csv", jira) == "jira-csv"
    [row] = rows_of(jira, "jira-csv")
    assert (row.id, row.title, row.body, row.labels) == ("OPS-7", "Disk full", "db-1 at 98%", ("team-sre", "oncall"))


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("backlog.jsonl", "{}", "jsonl"),
        ("backlog.ndjson", "{}", "jsonl"),
        ("gh.json", "[", "gh-json"),
        ("-", '[{"number": 1}]', "gh-json"),
        ("-", '{"title": "x"}', "jsonl"),
        ("-", "id,title,body", "csv"),
        ("data.csv", "id,title", "csv"),
    ],
)
def test_format_detection(name: str, head: str, expected: str) -> None:
    assert detect_format(name, head) == expected


def test_labelling_keeps_order_with_several_processes(stored: StoredClassifier) -> None:
    tickets = list(MINI) * 5
    lines = [json.dumps({"id": f"t{i}", "title": t.title, "body": t.body}) for i, t in enumerate(tickets)]
    lines.insert(17, "{broken")
    text = "\n".join(lines) + "\n"
    single = list(label_rows(rows_of(text, "jsonl"), stored, jobs=1, chunk_size=7))
    double = list(label_rows(rows_of(text, "jsonl"), stored, jobs=2, chunk_size=7))
    assert [i.row.line for i in double] == list(range(1, len(lines) + 1))
    assert [i.row.id for i in double] == [i.row.id for i in single]
    assert [i.decision for i in double] == [i.decision for i in single]
    assert double[17].decision is None and double[17].row.error


def test_writers_and_agreement(stored: StoredClassifier) -> None:
    rows = rows_of('{"id": "a", "title": "Pods OOMKilled in production", "team": "SRE"}\n{"title": ""}\n', "jsonl")
    items = list(label_rows(rows, stored))
    jsonl = io.BytesIO()
    write_jsonl(items, jsonl)
    first, second = (json.loads(line) for line in jsonl.getvalue().splitlines())
    assert first["line"] == 1 and first["id"] == "a" and set(first["scores"]) == set(TAXONOMY.ids)
    assert first["title"] == "Pods OOMKilled in production"
    assert second == {"line": 2, "error": "empty text: no title, body or text"}
    table = io.BytesIO()
    write_csv(items, table, TAXONOMY.ids)
    header, row, error_row = csv.reader(io.StringIO(table.getvalue().decode()))
    assert header[:6] == ["line", "id", "title", "team", "confidence", "abstained"]
    assert [h for h in header if h.startswith("score_")] == [f"score_{t}" for t in TAXONOMY.ids]
    assert row[1] == "a" and row[2] == "Pods OOMKilled in production" and row[3] == first["team"]
    assert error_row[-1].startswith("empty text")
    agreement = Agreement(TAXONOMY)
    for item in items:
        agreement.add(item)
    report = agreement.report()
    assert report.compared == 1 and report.confusion[TAXONOMY.ids.index("SRE")][TAXONOMY.ids.index(first["team"])] == 1


def test_agreement_reads_tracker_labels() -> None:
    agreement = Agreement(TAXONOMY)
    [row] = rows_of('{"title": "x", "labels": ["bug", "team::platform"]}\n', "jsonl")
    assert agreement.truth(row) == "Platform"


def test_atomic_output_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"

    def interrupted_run() -> None:
        with atomic_output(target) as handle:
            handle.write(b'{"partial": true}\n')
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as handle:
        handle.write(b"done\n")
    assert target.read_bytes() == b"done\n" and len(list(tmp_path.iterdir())) == 1
