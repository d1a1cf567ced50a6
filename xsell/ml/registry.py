"""Saved models: run ids, joblib artifacts, the train/score switch and the registry table.

A training run saves one *bundle* per dbt model, ``<dir>/<model>-<run_id>.joblib``: the
fitted estimator(s) and every side table the run produced (metrics, diagnostics,
feature importances), next to a JSON sidecar with its metadata and sha256. The run id is
a hash of the model name, its parameters and the content of its input frames, so the
same data and vars give the same id and the same file. ``<model>.current.json`` points
at the bundle the current build uses; the thin side-table nodes (calibration, metrics,
...) read their table from that bundle, so a model is trained once per build.

With ``ml_mode: score`` a model does not train: it loads the current bundle (checking
its sha256), scores the current data with the saved estimator, and leaves the pointer
and the side tables of the training run as they are.

The directory is ``ml_artifact_dir`` when set, else ``models/`` beside the DuckDB file
dbt builds into (``warehouse/models`` by default).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from xsell.ml.evaluation import DATE, IMPORTANCE_COLUMNS, conform, empty_frame

__all__ = [
    "REGISTRY_COLUMNS",
    "ArtifactError",
    "ArtifactStore",
    "artifact_store",
    "compute_run_id",
    "feature_importances",
    "model_mode",
    "params_from_config",
    "registry_frame",
    "side_table",
]

MODES = ("train", "score")

REGISTRY_COLUMNS = {
    "model": "str",
    "run_id": "str",
    "is_current": "bool",
    "status": "str",
    "artifact_file": "str",
    "artifact_dir": "str",
    "artifact_sha256": "str",
    "artifact_bytes": "int64",
    "estimator": "str",
    "features": "str",
    "params": "str",
    "train_start": DATE,
    "train_end": DATE,
    "test_start": DATE,
    "test_end": DATE,
    "train_rows": "int64",
    "test_rows": "int64",
    "sklearn_version": "str",
    "python_version": "str",
}


class ArtifactError(RuntimeError):
    pass


def model_mode(value) -> str:
    mode = str(value or "train").strip().lower()
    if mode not in MODES:
        raise ArtifactError(f"ml_mode must be one of {MODES}, got {value!r}")
    return mode


def _unset(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in {"", "None", "null"})


def params_from_config(cls, hyperparameters=None, **values):
    """A parameter dataclass from dbt config values, which arrive as strings: each value
    is cast to the type of the field's default (None, "None", "null" = the default);
    ``hyperparameters`` is a JSON object (a dict var rendered with ``tojson``) merged in."""
    defaults = cls()
    merged = {}
    if not _unset(hyperparameters):
        if isinstance(hyperparameters, str):
            hyperparameters = json.loads(hyperparameters)
        merged.update(hyperparameters)
    merged.update(values)
    unknown = set(merged) - set(defaults.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} parameter(s): {sorted(unknown)}")
    cast = {}
    for name, value in merged.items():
        default = getattr(defaults, name)
        if _unset(value):
            cast[name] = default
        elif default is None or isinstance(default, str):
            cast[name] = str(value)
        elif isinstance(default, bool):
            cast[name] = str(value).lower() in {"true", "1", "yes"}
        else:
            kind = type(default)
            cast[name] = kind(float(value)) if kind is int else kind(value)
    return cls(**{**defaults.__dict__, **cast})


def _frame_digest(frame: pd.DataFrame) -> bytes:
    columns = ",".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode()
    if frame.empty:
        return hashlib.sha256(columns).digest()
    # row hashes sorted: the id does not depend on the order rows arrive in
    hashed = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    return hashlib.sha256(columns + hashed.tobytes()).digest()


def compute_run_id(model: str, params: dict, *frames: pd.DataFrame) -> str:
    """12 hex digits of sha256(model, params, content of every input frame); a frame's
    content is the sorted set of its row hashes, so row order does not matter."""
    digest = hashlib.sha256(model.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    for frame in frames:
        digest.update(_frame_digest(frame))
    return digest.hexdigest()[:12]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


@dataclass(frozen=True)
class ArtifactStore:
    directory: Path
    # How ml_model_registry names the folder: the var ml_artifact_dir as set, or "models"
    # (beside the build file), never the build machine's absolute path, so two builds of
    # the same data give the same registry rows wherever they are built.
    label: str = ""

    def bundle_path(self, model: str, run_id: str) -> Path:
        return self.directory / f"{model}-{run_id}.joblib"

    def pointer_path(self, model: str) -> Path:
        return self.directory / f"{model}.current.json"

    def save(self, model: str, run_id: str, bundle: dict, metadata: dict) -> dict:
        """Write the bundle and its sidecar, then point ``<model>.current.json`` at it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.bundle_path(model, run_id)
        temporary = path.with_suffix(".joblib.tmp")
        joblib.dump(bundle, temporary, compress=1)  # zlib's fastest: 6 % larger than 3
        temporary.replace(path)
        meta = {
            **metadata,
            "model": model,
            "run_id": run_id,
            "artifact_file": path.name,
            "artifact_sha256": _sha256(path),
            "artifact_bytes": path.stat().st_size,
            "sklearn_version": sklearn.__version__,
            "python_version": platform.python_version(),
        }
        path.with_suffix(".json").write_text(
            json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
        )
        self.pointer_path(model).write_text(
            json.dumps({"run_id": run_id, "artifact_file": path.name}, indent=2)
        )
        return meta

    def current(self, model: str) -> tuple[dict, dict]:
        """The bundle and metadata the pointer names; its sha256 must match the sidecar."""
        pointer = self.pointer_path(model)
        if not pointer.is_file():
            raise ArtifactError(
                f"no saved artifact for {model} in {self.directory}: build once with "
                "ml_mode=train (the default) before ml_mode=score"
            )
        run_id = json.loads(pointer.read_text())["run_id"]
        path = self.bundle_path(model, run_id)
        meta = json.loads(path.with_suffix(".json").read_text())
        actual = _sha256(path)
        if actual != meta["artifact_sha256"]:
            raise ArtifactError(
                f"{path} does not match its recorded sha256 ({actual} != "
                f"{meta['artifact_sha256']}): retrain with ml_mode=train"
            )
        return joblib.load(path), meta

    def output(self, model: str, name: str, columns: dict[str, str]) -> pd.DataFrame:
        """A side table of the current bundle (typed empty frame when it has none)."""
        bundle, _ = self.current(model)
        frame = bundle.get("outputs", {}).get(name)
        if frame is None or frame.empty:
            return empty_frame(columns)
        return conform(frame, columns)


def artifact_store(session, configured_dir=None) -> ArtifactStore:
    """The artifact folder: ``configured_dir`` when set, else ``models/`` beside the DuckDB
    file of ``session`` (an in-memory database falls back to ./warehouse/models)."""
    if configured_dir not in (None, "", "None", "null"):
        return ArtifactStore(Path(str(configured_dir)).expanduser().resolve(),
                             str(configured_dir))
    row = session.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    base = Path(row[0]).resolve().parent if row and row[0] else Path("warehouse").resolve()
    return ArtifactStore(base / "models", "models")


def side_table(session, artifact_dir, model: str, name: str, columns: dict) -> pd.DataFrame:
    """A side table (``name``) of ``model``'s current bundle, for the thin dbt nodes."""
    return artifact_store(session, artifact_dir).output(model, name, columns)


def feature_importances(session, artifact_dir, models: list[str]) -> pd.DataFrame:
    """The importances side tables of ``models``' current bundles, stacked."""
    store = artifact_store(session, artifact_dir)
    frames = [store.output(model, "importances", IMPORTANCE_COLUMNS) for model in models]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return empty_frame(IMPORTANCE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["model", "segment", "feature"], kind="stable").reset_index(drop=True)


def registry_frame(store: ArtifactStore) -> pd.DataFrame:
    """Every saved bundle in the folder, one row each, ``is_current`` for those the
    pointers name (the ones this build trained or scored with)."""
    if not store.directory.is_dir():
        return empty_frame(REGISTRY_COLUMNS)
    current = {}
    for pointer in store.directory.glob("*.current.json"):
        current[pointer.name.removesuffix(".current.json")] = json.loads(pointer.read_text())[
            "run_id"
        ]
    rows = []
    for sidecar in sorted(store.directory.glob("*.json")):
        if sidecar.name.endswith(".current.json"):
            continue
        meta = json.loads(sidecar.read_text())
        row = {name: meta.get(name) for name in REGISTRY_COLUMNS}
        row["is_current"] = current.get(meta["model"]) == meta["run_id"]
        row["artifact_dir"] = store.label or str(store.directory)
        for name in ("features", "params", "estimator"):
            value = meta.get(name)
            row[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append(row)
    if not rows:
        return empty_frame(REGISTRY_COLUMNS)
    frame = pd.DataFrame(rows)
    for name in ("train_rows", "test_rows", "artifact_bytes"):
        frame[name] = frame[name].fillna(0)
    frame = conform(frame, REGISTRY_COLUMNS)
    return frame.sort_values(["model", "run_id"], kind="stable").reset_index(drop=True)
