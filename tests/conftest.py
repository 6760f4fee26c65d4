"""Shared fixtures: a small model trained once, copied into each test's temporary data dir."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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
