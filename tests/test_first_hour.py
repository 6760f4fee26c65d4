"""What a new user meets first, through the real CLI: the CLI from any directory, messages that say
where they looked, backlog files as trackers export them, and stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.places import Places, checkout_root, default_places
from service.settings import Settings
from tests.conftest import ROOT


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """A trained data dir and the small training data, as the variables name them."""
    return {
        "TICKET_ROUTER_DATA_DIR": str(settings.data_dir),
        "TICKET_ROUTER_TRAINING_DATA": str(settings.training_data),
    }


def run(env: dict[str, str], *args: str, input: str | bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


# -- from any directory --------------------------------------------------------------------------


def test_places_when_the_variables_are_unset(tmp_path: Path) -> None:
    checkout = tmp_path / "clone"
    elsewhere = tmp_path / "downloads"
    elsewhere.mkdir()
    (checkout / "training_data").mkdir(parents=True)
    (checkout / "training_data" / "teams.toml").write_text("")
    assert default_places(checkout, {}, checkout) == Places(Path("./var"), Path("./training_data"))
    from_elsewhere = default_places(elsewhere, {}, checkout)
    assert from_elsewhere.data_dir == checkout / "var", "the model `make run` trained, from any directory"
    assert from_elsewhere.training_data == checkout / "training_data"
    installed = default_places(elsewhere, {"XDG_DATA_HOME": str(tmp_path / "xdg")}, None)
    assert installed.data_dir == tmp_path / "xdg" / "ticket-router"
    assert installed.training_data == Path("./training_data")
    (elsewhere / "var").mkdir()
    assert default_places(elsewhere, {}, checkout).data_dir == Path("./var"), "a ./var of its own wins"


def test_the_cli_finds_the_checkouts_training_data_from_another_directory(tmp_path: Path) -> None:
    assert checkout_root() == ROOT, "the test suite runs from an editable install"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ROUTER_")}
    env["TICKET_ROUTER_DATA_DIR"] = str(tmp_path / "var")
    command = [str(Path(sys.executable).parent / "ticket-router"), "classify", "disk full"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"no active model in {tmp_path / 'var' / 'models'}" in result.stderr
    assert "TICKET_ROUTER_DATA_DIR" in result.stderr and "Traceback" not in result.stderr
    validate = subprocess.run(
        [command[0], "validate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert validate.returncode == 0 and str(ROOT / "training_data") in validate.stdout


@pytest.mark.parametrize(
    ("args", "looked", "setting"),
    [
        (["--data-dir", "{tmp}/nothing", "classify", "disk full"], "{tmp}/nothing/models", "TICKET_ROUTER_DATA_DIR"),
        (["--training-data", "{tmp}/none", "validate"], "{tmp}/none", "TICKET_ROUTER_TRAINING_DATA"),
        (["--training-data", "{tmp}/none", "train"], "{tmp}/none", "TICKET_ROUTER_TRAINING_DATA"),
        (["--data-dir", "{tmp}/nothing", "label", "{tmp}/in.jsonl", "-o", "-"], "{tmp}/nothing", "--data-dir"),
    ],
)
def test_every_not_found_names_where_it_looked_and_the_setting(
    env: dict[str, str], tmp_path: Path, args: list[str], looked: str, setting: str
) -> None:
    (tmp_path / "in.jsonl").write_text('{"title": "disk full"}\n')
    code, output = run(env, *(a.format(tmp=tmp_path) for a in args))
    assert code == 1
    assert looked.format(tmp=tmp_path) in output and setting in output


# -- backlog files -------------------------------------------------------------------------------

JIRA = "Summary,Issue key,Description,Labels\nDisk full on db-1,OPS-8,writes failing,team-sre\n"


@pytest.mark.parametrize("forced", [[], ["--format", "jira-csv"]])
def test_a_jira_export_with_a_byte_order_mark(env: dict[str, str], tmp_path: Path, forced: list[str]) -> None:
    source = tmp_path / "jira.csv"
    source.write_bytes(b"\xef\xbb\xbf" + JIRA.encode())
    out = tmp_path / "out.jsonl"
    code, output = run(env, "label", str(source), "-o", str(out), "--compare", *forced)
    assert code == 0, output
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["id"], record["title"]) == ("OPS-8", "Disk full on db-1")
    assert "(jira-csv)" in output and "warning" not in output


def test_label_writes_the_title_and_draws_the_compared_confusion_matrix(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "backlog.csv"
    source.write_text("id,title,team\nA-1,Pods OOMKilled in production,SRE\nA-2,CI pipeline fails on npm ci,DevOps\n")
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    code, output = run(env, "label", str(source), "-o", str(out), "--compare", "--report", str(report))
    assert code == 0, output
    assert out.read_text().splitlines()[1].startswith("2,A-1,Pods OOMKilled in production,")
    picture = tmp_path / "report.confusion.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(picture) in output
    chosen = tmp_path / "matrix.png"
    assert run(env, "label", str(source), "-o", str(out), "--compare", "--confusion", str(chosen))[0] == 0
    assert chosen.exists()


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b'id,title\n1,"Disk full"on db\n2,ok\n', [], "in.csv:2: malformed CSV"),
        (b'id,title\n1,ok\n2,"never closed\n3,more\n4,rows\n', [], "in.csv:3: malformed CSV"),
        (b"ref,headline\nX-1,Add dark mode\n", [], "no 'title' or 'body' column"),
        (b"ref,headline\nX-1,Add dark mode\n", ["--text-column", "summary"], "no 'summary' column"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", [], "not a text file"),
        (b"\xff\xfei\x00d\x00", [], "UTF-16"),
    ],
)
def test_unusable_input_is_refused_before_anything_is_written(
    env: dict[str, str], tmp_path: Path, content: bytes, extra: list[str], message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    out = tmp_path / "out.jsonl"
    code, output = run(env, "label", str(source), "-o", str(out), *extra)
    assert code == 1 and message in output, output
    assert not out.exists()


def test_a_header_without_a_text_column_names_the_columns_and_the_flags(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("ref,headline\nX-1,Add dark mode\n")
    code, output = run(env, "label", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert code == 1
    assert "'ref', 'headline'" in output and "--title-column" in output and "--text-column" in output


def test_empty_input_is_warned_about(env: dict[str, str], tmp_path: Path) -> None:
    for name, content in (("empty.jsonl", ""), ("header.csv", "id,title\n")):
        (tmp_path / name).write_text(content)
        code, output = run(env, "label", str(tmp_path / name), "-o", str(tmp_path / "out.jsonl"))
        assert code == 0 and "holds no tickets" in output


def test_an_unknown_output_extension_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"title": "disk full"}\n')
    code, output = run(env, "label", str(source), "-o", str(tmp_path / "x.xlsx"))
    assert code == 1 and "'x.xlsx'" in output and "--output-format" in output
    assert not (tmp_path / "x.xlsx").exists()
    code, _ = run(env, "label", str(source), "-o", str(tmp_path / "x.xlsx"), "--output-format", "csv")
    assert code == 0 and (tmp_path / "x.xlsx").read_text().startswith("line,id,title,team")


def test_a_missing_usual_column_is_a_warning(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "jira.csv"
    source.write_text("Issue key,Description\nOPS-1,Disk full on db-1\n")
    code, output = run(env, "label", str(source), "-o", str(tmp_path / "o.jsonl"), "--format", "jira-csv")
    assert code == 0 and "warning" in output and "no 'Summary' column" in output


# -- classify and models -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--title", "--body"])
def test_classify_reads_a_dash_from_standard_input(env: dict[str, str], flag: str) -> None:
    code, output = run(env, "classify", "--json", flag, "-", input="terraform apply fails in the staging pipeline\n")
    assert code == 0, output
    assert json.loads(output)["team"] == "DevOps"
    code, output = run(env, "classify", "--title", "-", "--body", "-", input="x")
    assert code == 2 and "only one of" in output


def test_models_list_never_cuts_a_version(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "models", "list")
    version = (tmp_path / "var" / "models" / "ACTIVE").read_text().strip()
    assert code == 0 and version in output
