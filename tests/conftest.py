"""Shared fixtures: a small model trained once, copied into each test's temporary data dir."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.trainer import train_version

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEFAULT_TEAMS = ROOT / "training_data" / "teams.toml"

# Every process the suite starts inherits this variable (servers, their workers, training processes),
# so the end of the session can tell whether any of them is still running, orphaned or not.
SESSION_MARK = "TICKET_ROUTER_TEST_SESSION"
os.environ[SESSION_MARK] = secrets.token_hex(8)
LEFTOVER_GRACE_SECONDS = 15.0


def processes_of_this_session() -> list[psutil.Process]:
    """Live processes other than this one that carry this session's mark in their environment.

    This process's own multiprocessing resource tracker (started by the first spawn pool a test
    opens in it) is not counted: it reads a pipe only this process holds, and ends with it.
    """
    mark, found = os.environ[SESSION_MARK], []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE or process.environ().get(SESSION_MARK) != mark:
                continue
            if process.ppid() == os.getpid() and "multiprocessing.resource_tracker" in " ".join(process.cmdline()):
                continue
            found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process the suite started is still running (after a grace period to stop)."""
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    left = processes_of_this_session()
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = processes_of_this_session()
    if not left:
        return
    described = []
    for process in left:
        try:
            described.append(f"{process.pid} (parent {process.ppid()}): {' '.join(process.cmdline())[:160]}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    if described:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "processes left running by the test session (now killed):\n  " + "\n  ".join(described)
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_training_data(root: Path, examples: Path | None = FIXTURES / "mini_examples.jsonl") -> Path:
    """A training-data directory with the default taxonomy and the small example set."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEFAULT_TEAMS, root / "teams.toml")
    (root / "examples").mkdir(exist_ok=True)
    if examples is not None:
        shutil.copy(examples, root / "examples" / examples.name)
    return root


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose registry holds one active small model (trained once per session)."""
    base = tmp_path_factory.mktemp("trained")
    settings = Settings(data_dir=base / "var", training_data=make_training_data(base / "training_data"))
    train_version(settings, activate=True, note="test model")
    return base


@pytest.fixture
def settings(tmp_path: Path, trained_dir: Path) -> Settings:
    """Settings over a private copy of the trained data dir."""
    shutil.copytree(trained_dir / "var" / "models", tmp_path / "var" / "models")
    training = make_training_data(tmp_path / "training_data")
    return Settings(data_dir=tmp_path / "var", training_data=training, model_poll_seconds=0.2, rate_limit="off")


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def empty_settings(tmp_path: Path) -> Settings:
    """Settings over an empty registry (no model)."""
    return Settings(data_dir=tmp_path / "empty-var", training_data=make_training_data(tmp_path / "td"))


PG_URL = os.environ.get("TICKET_ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (skipped when no server answers)."""
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"PostgreSQL is not reachable at {PG_URL} ({str(exc).strip()}); set TICKET_ROUTER_TEST_DATABASE_URL"
        )
    name = f"ticket_router_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: embedded SQLite, then PostgreSQL (skipped when unreachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url
