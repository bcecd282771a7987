"""Where a person finds the pipeline's record: MLflow's UI started on loopback, its useful pages.

MLflow 3 opens on a GenAI home page with an assistant panel; the runs of a training pipeline
(the classic table, charts, parent and child runs) are at `#/experiments/<id>/runs`, and the
registered model at `#/models/<name>`. `modalops ui` prints those, and the Prefect UI's address
where a server runs (issue 24).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modalops.secrets import redact_uri

MLFLOW_UI_HOME = Path(".modalops") / "mlflow"


@dataclass(frozen=True)
class UiLinks:
    """The pages `modalops ui` prints."""

    mlflow: str  # MLflow's UI root
    runs: str | None  # the experiment's runs view (None: no such experiment yet)
    model: str  # the registered model's page
    prefect: str | None  # the Prefect UI, where one answers

    def lines(self, experiment: str, model_name: str) -> list[str]:
        runs = self.runs or (
            f"{self.mlflow}/#/experiments  (experiment {experiment!r} appears after a first run)"
        )
        return [
            f"MLflow   {self.mlflow}",
            f"  runs   {runs}",
            f"  model  {self.model}  (registered model {model_name!r}: versions, aliases)",
            f"Prefect  {self.prefect or 'not running (modalops server start)'}",
        ]


def experiment_id(tracking_uri: str, experiment: str) -> str | None:
    """The id of `experiment` in the tracking store, None where it does not exist yet."""
    from mlflow import MlflowClient

    exp = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    return None if exp is None else exp.experiment_id


def ui_links(
    mlflow_url: str, tracking_uri: str, experiment: str, model_name: str, prefect_home: Path
) -> UiLinks:
    """The pages for the config's experiment and model on the MLflow UI at `mlflow_url`."""
    from modalops.services import find_prefect_server

    base = mlflow_url.rstrip("/")
    exp_id = experiment_id(tracking_uri, experiment)
    api = os.environ.get("PREFECT_API_URL") or find_prefect_server(prefect_home)
    return UiLinks(
        mlflow=base,
        runs=None if exp_id is None else f"{base}/#/experiments/{exp_id}/runs",
        model=f"{base}/#/models/{model_name}",
        prefect=api.removesuffix("/api") if api else None,
    )


def served_by_tracking_server(tracking_uri: str) -> bool:
    """Whether the tracking URI is itself an MLflow server (its UI is there already)."""
    return tracking_uri.startswith(("http://", "https://"))


def describe_backend(tracking_uri: str) -> str:
    """The tracking store for a printout, any password masked."""
    return redact_uri(tracking_uri)
