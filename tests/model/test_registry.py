from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model.dataset import load_examples
from model.errors import ModelIntegrityError, ModelNotFoundError, RegistryError
from model.registry import Registry
from model.taxonomy import load_taxonomy
from model.training import TrainedModel, train

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return train(TAXONOMY, MINI)


def test_save_writes_an_immutable_version_with_a_manifest(tmp_path: Path, model: TrainedModel) -> None:
    registry = Registry(tmp_path)
    manifest = registry.save(model, TAXONOMY, note="first")
    folder = tmp_path / manifest.version
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.joblib"]
    stored = json.loads((folder / "manifest.json").read_text())
    assert stored["data_sha256"] == model.report.data_sha256
    assert stored["artifact_sha256"] == manifest.artifact_sha256
    assert set(stored["libraries"]) >= {"python", "scikit-learn", "joblib"}
    assert stored["threshold"] == model.threshold
    assert stored["params"]["pipeline"]["ngram_max"] == 2
    assert stored["report"]["cv"]["macro_f1"] > 0
    assert registry.active_version() is None  # saving does not activate
    loaded = registry.load(manifest.version)
    assert loaded.classifier().decide("Disk full on the database host").model_version == manifest.version


def test_activate_rollback_and_history(tmp_path: Path, model: TrainedModel) -> None:
    registry = Registry(tmp_path)
    first = registry.save(model, TAXONOMY).version
    second = registry.save(model, TAXONOMY).version
    assert first != second
    registry.activate(first)
    registry.activate(second, actor="alice")
    assert registry.active_version() == second
    assert (tmp_path / "ACTIVE").read_text().strip() == second
    event = registry.rollback()
    assert (event.version, event.previous, event.kind) == (first, second, "rollback")
    assert registry.active_version() == first
    assert (tmp_path / first).exists() and (tmp_path / second).exists(), "versions are kept"
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    assert [e.version for e in registry.history()] == [first, second, first]
    assert [m.version for m in registry.list()] == [second, first]


def test_tampered_artifact_is_refused(tmp_path: Path, model: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.save(model, TAXONOMY).version
    artifact = tmp_path / version / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"sha256.*retrain"):
        registry.load(version)
    with pytest.raises(ModelIntegrityError):
        registry.activate(version)
    assert registry.active_version() is None


def test_library_mismatch_is_refused(tmp_path: Path, model: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.save(model, TAXONOMY).version
    path = tmp_path / version / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"scikit-learn 0\.24\.2 .*retrain"):
        registry.load(version)


@pytest.mark.parametrize("version", ["nope", "../etc", "20261126T194000Z-3f2a1c"])
def test_unknown_versions(tmp_path: Path, version: str) -> None:
    with pytest.raises(ModelNotFoundError):
        Registry(tmp_path).load(version)


def test_no_active_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="train"):
        Registry(tmp_path).load_active()
    with pytest.raises(RegistryError):
        Registry(tmp_path).rollback()


def test_a_crash_while_saving_leaves_no_half_version(
    tmp_path: Path, model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(tmp_path)

    def broken_rename(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("model.registry.os.rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        registry.save(model, TAXONOMY)
    assert registry.list() == []
    assert not any(tmp_path.iterdir())
    shutil.rmtree(tmp_path, ignore_errors=True)
