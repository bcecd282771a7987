"""The registered model batch inference uses: loaded by alias (or version) with what it was
trained and evaluated with: its dataset spec, abstention threshold, flagged slices, and the
alignment settings of its dataset version."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalops.config.align import AlignConfig
from modalops.dataset.spec import DatasetSpec


class ModelNotFound(LookupError):
    """The registry has no such model, alias or version; the message says which."""


@dataclass(frozen=True)
class ModelRef:
    """Which registered version a batch used: picklable, without the loaded model."""

    name: str
    version: str
    run_id: str
    threshold: float
    flagged_slices: tuple[str, ...] = ()
    dataset_version: str | None = None
    model_id: str | None = None  # MLflow 3 logged-model id, when the version has one

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass
class ServedModel:
    """A registered model version, loaded as its pyfunc, and what decides how it is used."""

    name: str
    version: str
    run_id: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    spec: DatasetSpec
    threshold: float
    window_s: float
    flagged_slices: list[str] = field(default_factory=list)
    dataset_version: str | None = None
    model_id: str | None = None  # MLflow 3 logged-model id, when the version has one

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version, self.run_id, self.threshold,
                        tuple(self.flagged_slices), self.dataset_version, self.model_id)  # fmt: skip


def _report_of(client, run_id: str) -> dict[str, Any] | None:
    """evaluation/report.json of the model's run, or of its parent run (where it lives there)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    runs = [run_id]
    parent = (client.get_run(run_id).data.tags or {}).get("mlflow.parentRunId")
    if parent:
        runs.append(parent)
    for rid in runs:
        with tempfile.TemporaryDirectory(prefix="modalops-report-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=rid, artifact_path="evaluation/report.json", dst_path=tmp,
                    tracking_uri=client.tracking_uri,
                )  # fmt: skip
            except (MlflowException, OSError):
                continue
            return json.loads(Path(path).read_text())
    return None


def _registered_version(client, tracking_uri: str, name: str, alias: str, version: str | None):
    """The model version to serve. ModelNotFound only where the registry answers that the model,
    version or alias does not exist; any other failed read is a RegistryReadError (issue 23)."""
    from mlflow.exceptions import MlflowException

    from modalops.register.registry import _absent, _registered_model, registry_read
    from modalops.secrets import redact_uri

    what = f"version {version}" if version else f"alias {alias!r}"
    deciding = "choosing the model to serve"
    if not version:  # a missing alias is not an error code MLflow keeps apart: read the aliases
        model = _registered_model(client, name, f"model {name!r}", deciding)
        version = (getattr(model, "aliases", None) or {}).get(alias) if model else None
        if version is None:
            raise ModelNotFound(
                f"registry {redact_uri(tracking_uri)}: model {name!r} has no {what}"
            )
    with registry_read(client, f"model {name!r} {what}", deciding):
        try:
            return client.get_model_version(name, str(version))
        except MlflowException as exc:
            if not _absent(exc):
                raise
            raise ModelNotFound(
                f"registry {redact_uri(tracking_uri)}: model {name!r} has no {what}"
                f" ({redact_uri(exc.message)})"
            ) from None


def load_registered(
    tracking_uri: str, name: str, alias: str = "champion", version: str | None = None
) -> ServedModel:
    """The model version `name@alias` (or `name/version`) with its spec and serving settings."""
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from modalops.register.registry import model_id_of
    from modalops.serving.pyfunc import spec_of

    client = MlflowClient(tracking_uri=tracking_uri)
    mv = _registered_version(client, tracking_uri, name, alias, version)
    mlflow.set_tracking_uri(tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    python_model = pyfunc.unwrap_python_model()
    config = dict(getattr(python_model, "config", {}) or {})
    report = _report_of(client, mv.run_id) if mv.run_id else None
    flagged = []
    for row in (report or {}).get("slices", []):
        if row.get("flagged"):
            flagged.append(f"{row['column']}={row['value']}")
    return ServedModel(
        name=name,
        version=str(mv.version),
        run_id=str(mv.run_id or ""),
        model=pyfunc,
        spec=spec_of(pyfunc),
        threshold=float(config.get("abstention_threshold", 0.0)),
        window_s=float(config["window_s"]),
        flagged_slices=flagged,
        dataset_version=(mv.tags or {}).get("dataset_version"),
        # a database registry leaves model_id empty; the source `models:/<id>` still names it
        model_id=getattr(mv, "model_id", None) or model_id_of(mv.source or ""),
    )


def training_align_config(
    store, dataset_version: str | None, fallback: AlignConfig, window_s: float
) -> tuple[AlignConfig, str]:
    """The align settings the model's dataset version was cut with, and where they came from.

    Windows must be cut as in training; the manifest's lineage records those settings. Without
    a manifest, `fallback` is used with the model's window length.
    """
    from modalops.shard import load_manifest

    if dataset_version:
        try:
            manifest = load_manifest(store, dataset_version)
            align = manifest.created_from.get("extra", {}).get("align")
            if align:
                return AlignConfig(**align), f"dataset {dataset_version} manifest"
        except (FileNotFoundError, ValueError):
            pass
    cfg = fallback.model_copy(update={"window_s": window_s})
    if cfg.hop_s > window_s:
        cfg = cfg.model_copy(update={"hop_s": window_s})
    return cfg, "config (the model's dataset manifest was not found)"
