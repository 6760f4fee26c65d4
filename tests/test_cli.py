from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from service.cli import main
from service.settings import Settings
from service.store import Store
from tests.conftest import FIXTURES, ROOT, make_training_data
from tests.server_kit import free_port, running_server, start_server
from tests.test_deploy import healthcheck_command


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    training = make_training_data(tmp_path / "training_data")
    return {"TICKET_ROUTER_DATA_DIR": str(tmp_path / "var"), "TICKET_ROUTER_TRAINING_DATA": str(training)}


def run(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_train_classify_and_models(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "train", "--note", "first")
    assert code == 0, output
    assert "cross-validation" in output and "macro-F1" in output
    code, output = run(env, "train", "--json", "--no-activate")
    assert code == 0
    second = json.loads(output)["version"]

    code, output = run(env, "classify", "--json", "Upgrade the EKS clusters to Kubernetes 1.30")
    assert code == 0
    decision = json.loads(output)
    assert decision["team"] == "Platform"
    assert set(decision) == {"team", "confidence", "abstained", "scores", "explanation", "model_version"}
    assert decision["model_version"] != second, "the second version was not activated"

    code, output = run(env, "classify", "--title", "Disk full on db-1", "--body", "writes failing in production")
    assert code == 0 and "SRE" in output and "because of" in output
    code, output = run(env, "classify", "-", input="terraform apply fails in the staging pipeline\n")
    assert code == 0 and "DevOps" in output

    code, output = run(env, "models", "list", "--json")
    rows = json.loads(output)
    assert [r["active"] for r in rows].count(True) == 1
    first = next(r["version"] for r in rows if r["active"])
    assert run(env, "models", "activate", second)[0] == 0
    assert (tmp_path / "var" / "models" / "ACTIVE").read_text().strip() == second
    code, output = run(env, "models", "rollback")
    assert code == 0 and first in output
    code, output = run(env, "models", "show", first)
    assert json.loads(output)["note"] == "first"


def test_cli_decisions_join_the_triage_queue_with_their_text(env: dict[str, str], trained_dir: Path) -> None:
    shutil.copytree(trained_dir / "var" / "models", Path(env["TICKET_ROUTER_DATA_DIR"]) / "models")
    close = {**env, "TICKET_ROUTER_TRIAGE_MARGIN": "1.0"}
    code, output = run(close, "classify", "--title", "Disk full on db-1", "--body", "writes failing")
    assert code == 0, output
    with Store.for_settings(Settings.from_env(close)) as store:
        [item] = store.triage.page()
    assert (item.decision.source, item.triage.title, item.triage.body) == ("cli", "Disk full on db-1", "writes failing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "anything"], "no active model"),
        (["models", "activate", "20991231T000000Z-abcdef"], "no model version"),
        (["models", "rollback"], "no active model"),
        (["classify"], "nothing to classify"),
    ],
)
def test_errors_are_one_clear_line(env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_settings_are_named(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["models", "list"], env={**env, "TICKET_ROUTER_PORT": "eighty"})
    assert result.exit_code != 0
    assert "TICKET_ROUTER_PORT='eighty'" in result.output


def test_validate_names_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "validate")
    assert code == 0 and "48 valid examples" in output
    bad = tmp_path / "training_data" / "examples" / "bad.jsonl"
    bad.write_text('{"title": "ok", "team": "SRE"}\n{"title": "", "team": "SRE"}\n{"title": "y", "team": "Sales"}\n')
    result = CliRunner().invoke(main, ["validate"], env=env)
    assert result.exit_code != 0
    assert f"{bad}:2: empty text" in result.output
    assert f"{bad}:3: unknown team 'Sales'" in result.output
    result = CliRunner().invoke(main, ["train"], env=env)
    assert result.exit_code != 0 and f"{bad}:2" in result.output


def test_evaluate_writes_report_and_confusion_matrices(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    code, output = run(
        env, "evaluate", "--folds", "3", "--holdout", str(FIXTURES / "mini_examples.jsonl"), "--out", str(out)
    )
    assert code == 0, output
    assert "3-fold cross-validation" in output and "held-out" in output and "abstain thresholds" in output
    [report] = list(out.glob("evaluation-*.json"))
    data = json.loads(report.read_text())
    assert data["cv"]["n"] == 48 and data["folds"] == 3
    assert set(data["cv"]) >= {"accuracy", "macro_f1", "ece", "per_team", "confusion", "thresholds"}
    assert data["holdout"]["n"] == 48
    assert 0.0 <= data["threshold"] <= 1.0
    pngs = sorted(p.name.split("-")[1] for p in out.glob("confusion-*.png"))
    assert pngs == ["cv", "holdout"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))


def test_serve_on_an_empty_registry_trains_first_then_answers(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    process = start_server({**os.environ, **env}, port, output=subprocess.PIPE)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
        decision = httpx.post(f"http://127.0.0.1:{port}/v1/classify", json={"title": "Grafana alert firing"}).json()
        assert decision["model_version"] == ready.json()["model_version"]
        # The container healthcheck is the same command compose runs.
        compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
        check = healthcheck_command(compose, port)
        assert subprocess.run([sys.executable, *check[1:]], timeout=10).returncode == 0
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert "trained and activated" in output


def test_every_worker_process_follows_an_activation(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    second = json.loads(run(env, "train", "--json", "--no-activate", "--note", "second")[1])["version"]
    server_env = {**os.environ, **env, "TICKET_ROUTER_MODEL_POLL_SECONDS": "0.5"}
    with running_server(server_env, "--workers", "2") as url, httpx.Client(base_url=url, timeout=5) as client:
        before = {
            client.post("/v1/classify", json={"title": f"disk full {i}"}).json()["model_version"] for i in range(20)
        }
        assert second not in before
        assert run(env, "models", "activate", second, "--force")[0] == 0
        switched_at = time.monotonic()
        seen: list[str] = []
        while time.monotonic() - switched_at < 10:
            # New connections each time, so both worker processes answer.
            responses = [httpx.post(f"{url}/v1/classify", json={"title": f"ticket {i}"}) for i in range(10)]
            assert {r.status_code for r in responses} == {200}
            seen = [r.json()["model_version"] for r in responses]
            if set(seen) == {second}:
                break
            time.sleep(0.2)
        assert set(seen) == {second}, "every worker serves the new version within seconds"


def test_init_trains_the_default_model_once(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "init")
    assert code == 0 and "trained and activated" in output
    active = (tmp_path / "var" / "models" / "ACTIVE").read_text()
    code, output = run(env, "init")
    assert code == 0 and "already active" in output
    assert (tmp_path / "var" / "models" / "ACTIVE").read_text() == active


BACKLOG = [
    {"id": "OPS-1", "title": "Pods OOMKilled in production", "body": "memory alert firing", "team": "SRE"},
    {"id": "OPS-2", "title": "Upgrade the EKS clusters to Kubernetes 1.30", "team": "Platform"},
    {"id": "OPS-3", "title": "CI pipeline fails on npm ci", "team": "DevOps"},
    {"id": "OPS-4", "title": "Checkout total ignores the discount code", "team": "Development"},
]


def backlog_file(tmp_path: Path, bad: bool = False) -> Path:
    lines = [json.dumps(row) for row in BACKLOG]
    if bad:
        lines[1:1] = ["{broken json", json.dumps({"id": "OPS-9", "title": "   "})]
    path = tmp_path / "backlog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_label_jsonl_with_report_and_compare(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    out, report = tmp_path / "labelled.jsonl", tmp_path / "report.json"
    code, output = run(env, "label", str(backlog_file(tmp_path)), "-o", str(out), "--compare", "--report", str(report))
    assert code == 0, output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["OPS-1", "OPS-2", "OPS-3", "OPS-4"]
    assert [r["team"] for r in records] == ["SRE", "Platform", "DevOps", "Development"]
    assert {"confidence", "abstained", "scores", "explanation", "model_version"} <= set(records[0])
    summary = json.loads(report.read_text())
    assert summary["rows"] == 4 and summary["errors"] == 0 and summary["per_team"]["SRE"] == 1
    assert summary["agreement"]["compared"] == 4 and summary["agreement"]["accuracy"] == 1.0
    assert "agreement with the backlog" in output and "labelled 4 rows" in output


def test_label_bad_rows_are_written_counted_and_set_the_exit_code(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    out = tmp_path / "labelled.csv"
    result = CliRunner().invoke(main, ["label", str(backlog_file(tmp_path, bad=True)), "-o", str(out)], env=env)
    assert result.exit_code == 3
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    assert rows[1]["error"].startswith("not a JSON object") and rows[1]["line"] == "2"
    assert rows[2]["error"].startswith("empty text") and rows[2]["id"] == "OPS-9"
    assert rows[0]["team"] == "SRE" and rows[0]["score_SRE"]


def test_label_reads_stdin_and_writes_stdout(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    text = backlog_file(tmp_path).read_text()
    result = CliRunner().invoke(main, ["label", "-", "-o", "-", "--quiet"], env=env, input=text)
    assert result.exit_code == 0
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["OPS-1", "OPS-2", "OPS-3", "OPS-4"]


def test_label_tracker_exports_and_column_choices(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    gh = tmp_path / "gh.json"
    gh.write_text(
        json.dumps(
            [
                {
                    "number": 7,
                    "title": "Release workflow fails to publish",
                    "body": "",
                    "labels": [{"name": "team:devops"}],
                }
            ]
        )
    )
    jira = tmp_path / "jira.csv"
    jira.write_text("Summary,Issue key,Description,Labels\nDisk full on db-1,OPS-8,writes failing,team-sre\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("ref,headline\nX-1,Add dark mode to the settings page\n")
    for path, extra, expected_id in [
        (gh, [], "7"),
        (jira, ["--compare"], "OPS-8"),
        (plain, ["--id-column", "ref", "--text-column", "headline"], "X-1"),
    ]:
        out = tmp_path / f"{path.stem}.out.jsonl"
        code, output = run(env, "label", str(path), "-o", str(out), *extra)
        assert code == 0, output
        [record] = [json.loads(line) for line in out.read_text().splitlines()]
        assert record["id"] == expected_id and "team" in record


def test_label_filters_and_jobs(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    source = backlog_file(tmp_path)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run(env, "label", str(source), "-o", str(one), "--quiet")[0] == 0
    assert run(env, "label", str(source), "-o", str(two), "--quiet", "--jobs", "2", "--chunk-size", "1")[0] == 0
    assert one.read_text() == two.read_text(), "the same decisions in the same order with two processes"
    confident = tmp_path / "confident.jsonl"
    assert run(env, "label", str(source), "-o", str(confident), "--quiet", "--min-confidence", "1.0")[0] == 0
    assert confident.read_text() == ""
    triage = tmp_path / "triage.jsonl"
    assert run(env, "label", str(source), "-o", str(triage), "--quiet", "--only-abstained")[0] == 0
    kept = [json.loads(line) for line in triage.read_text().splitlines()]
    assert all(r["abstained"] for r in kept)


def test_label_unreadable_input_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "train")[0] == 0
    out = tmp_path / "never.jsonl"
    result = CliRunner().invoke(main, ["label", str(tmp_path / "missing.jsonl"), "-o", str(out)], env=env)
    assert result.exit_code == 1 and "cannot read" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_label_progress_bar_on_a_terminal_and_summary_table(env: dict[str, str], tmp_path: Path) -> None:
    from rich.console import Console

    from service.backlog import Columns
    from service.labelling import LabelJob, run_label_job
    from service.settings import Settings

    assert run(env, "train")[0] == 0
    settings = Settings(data_dir=tmp_path / "var", training_data=tmp_path / "training_data")
    source = backlog_file(tmp_path, bad=True)
    job = LabelJob(
        input_path=source,
        output_path=tmp_path / "out.jsonl",
        input_format=None,
        output_format=None,
        columns=Columns(team="team"),
        progress=True,
    )
    terminal = Console(file=io.StringIO(), force_terminal=True, width=160)
    summary = run_label_job(settings, job, terminal)
    shown = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "labelling" in shown and "rows/s" in shown, "the bar shows rows and rows/s"
    assert summary.rows == 6 and summary.errors == 2 and summary.decided == 4
    assert "errors" in shown and "abstained" in shown and "SRE" in shown

    quiet = Console(file=io.StringIO(), force_terminal=True, width=160)
    run_label_job(settings, LabelJob(**{**job.__dict__, "progress": False, "summary": False}), quiet)
    assert quiet.file.getvalue() == ""  # type: ignore[attr-defined]
