"""Versioned model directories and the registry: ``<root>/<name>/<version>/`` plus ``current`` and ``shadow``.

A model directory holds ``model.joblib`` (the :class:`TrainedModel`) and ``metadata.json`` (feature schema,
training window, data hash, parameters, thresholds, library versions). ``current`` names the version that
alerts, ``shadow`` one that is scored and recorded but never alerts. Versions are ``v1``, ``v2``...
"""

from __future__ import annotations

import re
from pathlib import Path

import joblib
import orjson

from detectors.errors import DetectorError
from detectors.ml.features.behaviour import feature_names
from detectors.ml.model import TrainedModel

_VERSION = re.compile(r"^v(\d+)$")


class ModelStoreError(DetectorError):
    """A model directory or registry entry that cannot be used."""


def save(model: TrainedModel, root: Path) -> Path:
    """Write ``model`` as the next version of its name under ``root``; returns the version directory."""
    base = root / model.name
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(m[1]) for p in base.iterdir() if (m := _VERSION.match(p.name))]
    version = f"v{max(numbers, default=0) + 1}"
    target = base / version
    target.mkdir()
    model.metadata["version"] = version
    joblib.dump(model, target / "model.joblib", compress=3)
    (target / "metadata.json").write_bytes(orjson.dumps(model.metadata, option=orjson.OPT_INDENT_2))
    return target


def versions(base: Path) -> list[str]:
    """The versions of one model name, oldest first."""
    found = [(int(m[1]), p.name) for p in base.iterdir() if (m := _VERSION.match(p.name))] if base.is_dir() else []
    return [name for _, name in sorted(found)]


def resolve(path: Path, pointer: str = "current") -> Path:
    """A version directory from itself, or from a name directory (its ``current``, else the latest version)."""
    if (path / "model.joblib").is_file():
        return path
    if (path / pointer).is_file():
        return path / (path / pointer).read_text(encoding="utf-8").strip()
    found = versions(path)
    if not found:
        raise ModelStoreError(f"{path}: neither a model directory nor a model name with versions")
    return path / found[-1]


def load(path: Path, pointer: str = "current") -> TrainedModel:
    """Load a model from a version directory or a name directory."""
    target = resolve(path, pointer)
    try:
        model = joblib.load(target / "model.joblib")
    except (OSError, EOFError, ValueError) as exc:
        raise ModelStoreError(f"{target}: cannot load the model: {exc}") from None
    if not isinstance(model, TrainedModel):
        raise ModelStoreError(f"{target}: not a logwarden model")
    behaviour = model.preset.behaviour
    if behaviour is not None and model.feature_names != feature_names(behaviour):
        raise ModelStoreError(
            f"{target}: trained on an older set of behaviour features "
            f"({len(model.feature_names)} columns, now {len(feature_names(behaviour))}): retrain it"
        )
    return model


def promote(base: Path, version: str, pointer: str = "current") -> None:
    """Point ``current`` (or ``shadow``) of a model name at ``version``."""
    if version not in versions(base):
        raise ModelStoreError(f"{base}: no version {version!r} (have {', '.join(versions(base)) or 'none'})")
    tmp = base / f".{pointer}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    tmp.replace(base / pointer)


def pointers(base: Path) -> dict[str, str]:
    """``{"current": "v2", "shadow": "v3"}`` (the pointers that are set)."""
    return {p: (base / p).read_text(encoding="utf-8").strip() for p in ("current", "shadow") if (base / p).is_file()}
