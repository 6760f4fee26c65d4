"""The model registry: immutable versions on disk, a manifest each, and an atomic ACTIVE pointer.

Layout under the registry root::

    <root>/<version>/model.joblib     the fitted pipeline (a pickle: loaded only after its sha256 matches)
    <root>/<version>/manifest.json    data sha256, library versions, parameters, metrics, threshold
    <root>/ACTIVE                     the active version's name, replaced atomically
    <root>/SHADOW                     a candidate run beside the active model, if any
    <root>/history.jsonl              one line per activation (for rollback and the audit trail)

The last three are the default ``FilePointers``; replicas that share a database keep them there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import joblib
import msgspec
import numpy
import scipy
import sklearn
from sklearn.pipeline import Pipeline

from model.errors import ModelIntegrityError, ModelNotFoundError, RegistryError
from model.files import atomic_write_text
from model.inference import Classifier
from model.promotion import GateResult
from model.taxonomy import Taxonomy, TaxonomyChange
from model.training import TrainedModel, TrainingParams, TrainingReport

__all__ = ["Activation", "FilePointers", "LoadedModel", "Manifest", "Pointers", "Registry", "current_libraries"]

ARTIFACT = "model.joblib"
MANIFEST = "manifest.json"
FORMAT = "1"
_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}(?:-[0-9]+)?$")


def current_libraries() -> dict[str, str]:
    """Versions of everything a pickled pipeline depends on, as recorded in manifests."""
    return {
        "format": FORMAT,
        "python": ".".join(platform.python_version_tuple()[:2]),
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": numpy.__version__.split(".")[0],
        "scipy": scipy.__version__.split(".")[0],
    }


class Manifest(msgspec.Struct, frozen=True):
    """Everything known about a model version besides its weights."""

    version: str
    created_at: str
    teams: list[str]
    threshold: float
    data_sha256: str
    artifact_sha256: str
    libraries: dict[str, str]
    params: TrainingParams
    report: TrainingReport
    taxonomy: Taxonomy
    artifact: str = ARTIFACT
    note: str = ""
    corrections_used: int = 0
    corrections_dropped: int = 0
    taxonomy_change: TaxonomyChange | None = None
    gate: GateResult | None = None
    gate_against: str | None = None
    example_keys: list[str] = []
    # Per-team abstain thresholds (a team missing here uses ``threshold``).
    team_thresholds: dict[str, float] = {}


class Activation(msgspec.Struct, frozen=True):
    """One switch of the ACTIVE pointer: who, when, from, to, and the new version's metrics."""

    at: str
    version: str
    previous: str | None
    actor: str = "cli"
    kind: str = "activate"
    reason: str = ""
    macro_f1: float | None = None
    ece: float | None = None


class LoadedModel(msgspec.Struct, frozen=True):
    """A verified manifest with its pipeline."""

    manifest: Manifest
    pipeline: Pipeline

    def classifier(self, max_chars: int = 20_000, threshold: float | None = None) -> Classifier:
        """The fast decision function of this version (``threshold`` overrides the stored ones, every team's)."""
        m = self.manifest
        shrink = m.params.evidence_shrink
        if threshold is not None:
            return Classifier(self.pipeline, m.teams, threshold, m.version, max_chars, evidence_shrink=shrink)
        return Classifier(self.pipeline, m.teams, m.threshold, m.version, max_chars, m.team_thresholds, shrink)


class Pointers(Protocol):
    """Where a registry keeps its active and shadow versions and its activation history."""

    def active(self) -> str | None:
        """The active version, if any."""

    def shadow(self) -> str | None:
        """The version run in shadow, if any."""

    def activate(self, event: Activation) -> None:
        """Make ``event.version`` active and record the event, atomically."""

    def set_shadow(self, version: str | None) -> None:
        """Set or clear the shadow version."""

    def history(self) -> list[Activation]:
        """Every activation, oldest first."""

    def record(self, manifest: Manifest) -> None:
        """Note a newly saved version (for shared metadata; may do nothing)."""


class FilePointers:
    """Pointers as files beside the versions: ACTIVE and SHADOW (replaced atomically), history.jsonl."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def active(self) -> str | None:
        """The ACTIVE file's version."""
        return _read_pointer(self.root / "ACTIVE")

    def shadow(self) -> str | None:
        """The SHADOW file's version."""
        return _read_pointer(self.root / "SHADOW")

    def activate(self, event: Activation) -> None:
        """Replace ACTIVE, then append the event to history.jsonl."""
        atomic_write_text(self.root / "ACTIVE", event.version + "\n")
        with (self.root / "history.jsonl").open("ab") as handle:
            handle.write(msgspec.json.encode(event) + b"\n")

    def set_shadow(self, version: str | None) -> None:
        """Replace or remove SHADOW."""
        if version is None:
            (self.root / "SHADOW").unlink(missing_ok=True)
        else:
            atomic_write_text(self.root / "SHADOW", version + "\n")

    def history(self) -> list[Activation]:
        """history.jsonl, skipping a torn last line after a crash."""
        path = self.root / "history.jsonl"
        if not path.exists():
            return []
        decoder = msgspec.json.Decoder(Activation)
        events = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                try:
                    events.append(decoder.decode(line))
                except msgspec.DecodeError:
                    continue
        return events

    def record(self, manifest: Manifest) -> None:
        """Nothing to do: the manifest is in the version's folder."""


def _read_pointer(path: Path) -> str | None:
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Registry:
    """Model versions under one directory; safe to share between processes.

    Artifacts and manifests are files under ``root``; the active and shadow pointers and the
    activation history live wherever ``pointers`` keeps them (files beside the versions by
    default, a shared database when several replicas serve).
    """

    def __init__(self, root: Path, pointers: Pointers | None = None) -> None:
        self.root = root
        self.pointers: Pointers = pointers or FilePointers(root)

    # -- writing --------------------------------------------------------------------------

    def save(
        self,
        model: TrainedModel,
        taxonomy: Taxonomy,
        note: str = "",
        *,
        corrections_used: int = 0,
        corrections_dropped: int = 0,
        taxonomy_change: TaxonomyChange | None = None,
        gate: GateResult | None = None,
        gate_against: str | None = None,
        example_keys: Sequence[str] = (),
    ) -> Manifest:
        """Store a trained model as a new immutable version (not activated)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            artifact = staging / ARTIFACT
            joblib.dump(model.pipeline, artifact, compress=3)
            artifact_sha = _sha256(artifact)
            created = _now()
            base = f"{created:%Y%m%dT%H%M%SZ}-{artifact_sha[:6]}"
            version = base
            suffix = 1
            while (self.root / version).exists():
                suffix += 1
                version = f"{base}-{suffix}"
            manifest = Manifest(
                version=version,
                created_at=created.isoformat(timespec="seconds"),
                teams=list(model.teams),
                threshold=model.threshold,
                data_sha256=model.report.data_sha256,
                artifact_sha256=artifact_sha,
                libraries=current_libraries(),
                params=model.params,
                report=model.report,
                taxonomy=taxonomy,
                note=note,
                corrections_used=corrections_used,
                corrections_dropped=corrections_dropped,
                taxonomy_change=taxonomy_change,
                gate=gate,
                gate_against=gate_against,
                example_keys=sorted(example_keys),
                team_thresholds=dict(model.team_thresholds),
            )
            (staging / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
            os.rename(staging, self.root / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.pointers.record(manifest)
        return manifest

    def activate(self, version: str, actor: str = "cli", kind: str = "activate", reason: str = "") -> Activation:
        """Point ACTIVE at ``version`` atomically and record the switch."""
        loaded = self.load(version)  # never point at something that would not load
        previous = self.active_version()
        cv = loaded.manifest.report.cv
        event = Activation(
            at=_now().isoformat(timespec="seconds"),
            version=version,
            previous=previous,
            actor=actor,
            kind=kind,
            reason=reason,
            macro_f1=cv.macro_f1 if cv else None,
            ece=cv.ece if cv else None,
        )
        self.pointers.activate(event)
        return event

    def rollback_target(self) -> str:
        """The version a rollback would return to; ``RegistryError`` when there is none."""
        current = self.active_version()
        if current is None:
            raise RegistryError("no active model to roll back from")
        for event in reversed(self.history()):
            if event.version == current and event.kind != "rollback" and event.previous:
                if event.previous == current:
                    continue
                return event.previous
        raise RegistryError(f"nothing to roll back to: {current} has no earlier active version")

    def rollback(self, actor: str = "cli") -> Activation:
        """Return to the version that was active before the current one."""
        current = self.active_version()
        target = self.rollback_target()
        return self.activate(target, actor=actor, kind="rollback", reason=f"from {current}")

    def set_shadow(self, version: str | None) -> None:
        """Run ``version`` in shadow beside the active model (None stops shadowing)."""
        if version is not None:
            self.load(version)
        self.pointers.set_shadow(version)

    # -- reading --------------------------------------------------------------------------

    def shadow_version(self) -> str | None:
        """The version running in shadow, if any."""
        return self.pointers.shadow()

    def active_version(self) -> str | None:
        """The active version's name, or None when nothing was activated yet."""
        return self.pointers.active()

    def history(self) -> list[Activation]:
        """Every activation, oldest first."""
        return self.pointers.history()

    def manifest(self, version: str) -> Manifest:
        """The manifest of ``version``."""
        if not _VERSION_RE.match(version):
            raise ModelNotFoundError(f"no model version {version!r}")
        path = self.root / version / MANIFEST
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelNotFoundError(f"no model version {version!r}") from None
        try:
            return msgspec.json.decode(data, type=Manifest)
        except msgspec.DecodeError as exc:
            raise ModelIntegrityError(f"{path}: unreadable manifest ({exc}); retrain the model") from None

    def versions(self) -> list[str]:
        """The names of every stored version (a folder with a manifest), in no particular order."""
        if not self.root.exists():
            return []
        return [
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and _VERSION_RE.match(child.name) and (child / MANIFEST).exists()
        ]

    def list(self) -> list[Manifest]:
        """Every stored version, newest first."""
        manifests = []
        for version in self.versions():
            try:
                manifests.append(self.manifest(version))
            except ModelIntegrityError:
                continue
        return sorted(manifests, key=lambda m: (m.created_at, m.version), reverse=True)

    def load(self, version: str) -> LoadedModel:
        """Load ``version`` after checking the artifact's sha256 and the library versions."""
        manifest = self.manifest(version)
        wanted = manifest.libraries
        have = current_libraries()
        mismatched = [
            f"{name} {wanted.get(name)} (installed {have[name]})" for name in have if wanted.get(name) != have[name]
        ]
        if mismatched:
            raise ModelIntegrityError(
                f"model {version} was trained with different libraries: {', '.join(mismatched)};"
                " retrain it with `ticket-router train`"
            )
        artifact = self.root / version / manifest.artifact
        if not artifact.exists():
            raise ModelIntegrityError(f"model {version}: artifact {artifact} is missing; retrain the model")
        actual = _sha256(artifact)
        if actual != manifest.artifact_sha256:
            raise ModelIntegrityError(
                f"model {version}: artifact sha256 {actual[:12]}... does not match the manifest's"
                f" {manifest.artifact_sha256[:12]}...; the file was altered, retrain the model"
            )
        pipeline = joblib.load(artifact)
        if not isinstance(pipeline, Pipeline):
            raise ModelIntegrityError(f"model {version}: artifact is not a pipeline; retrain the model")
        return LoadedModel(manifest=manifest, pipeline=pipeline)

    def load_active(self) -> LoadedModel:
        """Load the active version."""
        version = self.active_version()
        if version is None:
            raise ModelNotFoundError(f"no active model in {self.root}: train one with `ticket-router train`")
        return self.load(version)
