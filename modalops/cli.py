"""The `modalops` command line: pipeline runs, dataset specs, config inspection, local services."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from modalops.deploy_cli import deploy, status, worker_app
from modalops.plan_cli import plan
from modalops.privacy_cli import privacy_app
from modalops.review.cli import review_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
dataset_app = typer.Typer(no_args_is_help=True, help="Dataset specs: draft, check, kinds.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the pipeline configuration.")
server_app = typer.Typer(no_args_is_help=True, help="The local Prefect server.")
app.add_typer(dataset_app, name="dataset")
app.add_typer(config_app, name="config")
app.add_typer(server_app, name="server")
app.add_typer(worker_app, name="worker")
app.add_typer(review_app, name="review")
app.add_typer(privacy_app, name="privacy")
app.command()(deploy)
app.command()(plan)
app.command()(status)

STATE_DIR = Path(".modalops")
PREFECT_HOME = STATE_DIR / "prefect"

ConfigOpt = Annotated[
    list[Path] | None, typer.Option("--config", "-c", help="YAML config (a diff of the defaults).")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override, e.g. --set train.max_epochs=3.")
]


def _load(config: list[Path] | None, overrides: list[str] | None):
    from modalops.config import ConfigError, load_config

    try:
        return load_config(config or [], overrides or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def _prefect_api() -> str:
    """PREFECT_API_URL if set, else a local server under .modalops/prefect (started if needed)."""
    from modalops.services import find_prefect_server, start_prefect_server

    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    api = find_prefect_server(PREFECT_HOME)
    if api:
        return api
    # on stderr: `modalops run` prints its summary as JSON on stdout (`| jq` must work)
    typer.echo("starting a local Prefect server (first run takes ~15 s) ...", err=True)
    port = 4200
    from modalops.services import free_port, port_is_open

    if port_is_open(port):
        port = free_port()
    return start_prefect_server(PREFECT_HOME, port=port).url


def _prefect_settings():
    """Settings that point Prefect at PREFECT_API_URL or the local server (started if needed)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.settings import PREFECT_HOME as HOME_SETTING

    api = _prefect_api()
    return temporary_settings({PREFECT_API_URL: api, HOME_SETTING: str(PREFECT_HOME.resolve())})


def run_flow(cfg) -> dict:
    """Run the training pipeline flow against PREFECT_API_URL or the local server."""
    from flows.run_timing import stage_times
    from flows.training_pipeline import training_pipeline
    from modalops.validate import ValidationGateError

    with _prefect_settings():
        try:
            summary = training_pipeline(cfg)
        except ValidationGateError as exc:
            # the verdict table is the message people need; the traceback is not
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
        if summary.get("flow_run_id"):
            times = stage_times(summary["flow_run_id"])
            summary["flow_seconds"] = times.flow_seconds
            summary["task_seconds"] = times.task_seconds
            summary["stage_table"] = times.table()
        return summary


@app.command()
def run(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Run the training pipeline flow with a config (defaults + files + overrides)."""
    cfg = _load(config, set_)
    summary = run_flow(cfg)
    typer.echo(json.dumps(summary, indent=2, default=str))


def format_summary(summary: dict, cfg, seconds: float) -> str:
    """The short table printed after a run (`modalops run --summary`, `make demo`)."""
    uni = summary["unimodal_macro_f1"]
    width = max(len(m) for m in [*uni, "fused"]) + 2
    lines = [
        "",
        f"modalops run: {cfg.name}",
        "=" * 60,
        f"dataset version      {summary['dataset_version']}",
        f"validation           {'PASSED' if summary['validation_passed'] else 'FAILED'}"
        f" (bad-sample fraction {100 * summary['bad_fraction']:.1f}%)",
        "samples              " + ", ".join(f"{k}={v}" for k, v in summary["splits"].items()),
        "",
        f"{'model':<{width}}test macro-F1",
        f"{'fused':<{width}}{summary['fused_macro_f1']:.3f}",
        *(f"{m:<{width}}{f1:.3f}" for m, f1 in sorted(uni.items(), key=lambda kv: -kv[1])),
        f"lift over best unimodal ({summary['best_unimodal']}): {100 * summary['lift']:+.1f} F1 points",
        "",
        f"registered model     {summary['model_name']} v{summary['model_version']}"
        f" aliases: {', '.join(summary['aliases'])}",
        f"  load it with       mlflow.pyfunc.load_model('models:/{summary['model_name']}@champion')",
        f"wall time            {seconds:.0f} s",
        *_stage_lines(summary),
        "",
        "UIs:",
        f"  MLflow   {_mlflow_ui_hint(cfg)}",
        f"  Prefect  {_prefect_ui_hint()}",
    ]
    return "\n".join(lines)


def _stage_lines(summary: dict) -> list[str]:
    """Where the flow's time went, as Prefect recorded it (validation's share: issue 4)."""
    if "task_seconds" not in summary:
        return []
    flow_s, tasks = summary["flow_seconds"], summary["task_seconds"]
    share = 100 * tasks.get("validate_samples", 0.0) / flow_s if flow_s else 0.0
    return [
        f"  in the flow        {flow_s:.0f} s; validation {tasks.get('validate_samples', 0):.1f} s"
        f" ({share:.1f}%)",
        "",
        summary["stage_table"],
    ]


def _mlflow_ui_hint(cfg) -> str:
    """The `modalops ui` line that opens this run's store (no password: it is redacted)."""
    from modalops.config.evaluate import RegistryConfig
    from modalops.secrets import redact_uri

    defaults = RegistryConfig()
    sets = "".join(
        f" --set registry.{k}={redact_uri(getattr(cfg.registry, k))}"
        for k in ("tracking_uri", "experiment", "model_name")
        if getattr(cfg.registry, k) != getattr(defaults, k)
    )
    return f".venv/bin/modalops ui{sets}  (MLflow on 127.0.0.1; prints its runs view)"


def _prefect_ui_hint() -> str:
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        from modalops.services import find_prefect_server

        api = find_prefect_server(PREFECT_HOME)
    if api:
        return f"{api.removesuffix('/api')}  (stop the local server: modalops server stop)"
    return "modalops server start"


def _open(raw: str):
    from modalops.store import open_store

    return open_store(raw)  # S3: the endpoint comes from AWS_ENDPOINT_URL, as everywhere


def _spec_for(raw: str, spec: Path | None):
    from modalops.dataset.load import load_dataset_spec
    from modalops.dataset.spec import SpecError

    try:
        return load_dataset_spec(_open(raw), None if spec is None else str(spec))
    except SpecError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


SpecOpt = Annotated[
    Path | None, typer.Option("--spec", help="Dataset spec (default: RAW/dataset.yaml).")
]


@dataset_app.command("init")
def dataset_init(
    raw: Annotated[str, typer.Argument(help="Folder (or s3:// prefix) of recordings.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the draft here (default: print it).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name.")] = None,
) -> None:
    """Draft a dataset spec from a folder: kinds from extensions and headers, rates from
    timestamps, label classes from the label files. Read it, fix it, then `dataset check`."""
    import yaml

    from modalops.dataset.draft import draft_spec
    from modalops.dataset.spec import SpecError, parse_spec

    try:
        doc, hints = draft_spec(_open(raw), name)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    header = "".join(
        f"# {n}\n" for n in ["Drafted by `modalops dataset init`; check every guess.", *hints]
    )
    text = header + yaml.safe_dump(doc, sort_keys=False)
    try:
        parse_spec(doc, "draft")
    except SpecError as exc:
        text += "\n# The draft does not validate yet:\n" + "".join(
            f"#{line}\n" for line in str(exc).splitlines()[1:]
        )
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@dataset_app.command("check")
def dataset_check(
    raw: Annotated[str, typer.Argument(help="Folder (or s3:// prefix) of recordings.")],
    spec: SpecOpt = None,
    max_sessions: Annotated[int | None, typer.Option(help="Check only the first N.")] = None,
) -> None:
    """Check a folder against its spec; print every problem with its file and line; exit 1 if any.

    It runs ingest itself (nothing is written): what it prints is what a pipeline run would
    quarantine, with the same reasons."""
    from modalops.config.data import IngestConfig
    from modalops.dataset.errors import RawDataError
    from modalops.ingest import ingest_recordings

    ds = _spec_for(raw, spec)
    try:
        result = ingest_recordings(
            _open(raw), ds, IngestConfig(raw_uri=raw, max_sessions=max_sessions)
        )
    except RawDataError as err:
        typer.secho(str(err), fg="red", err=True)
        raise typer.Exit(1) from None
    problems = result.quarantine["reason"].astype(str).tolist()
    for reason in problems:
        typer.echo(reason)
    n = result.catalog["session_id"].nunique()
    verdict = "OK" if not problems else f"{len(problems)} problems"
    typer.echo(f"{ds.name}: {n} sessions, {len(ds.streams)} streams checked: {verdict}")
    if problems:
        raise typer.Exit(1)


@dataset_app.command("kinds")
def dataset_kinds() -> None:
    """List the stream kinds with their parameters and checks."""
    from modalops.kinds import get_kind, kind_names

    for name in kind_names():
        kind = get_kind(name)
        typer.echo(f"{name}: {kind.description} ({', '.join(kind.extensions)})")
        for section, model in (("params", kind.params_model), ("checks", kind.checks_model)):
            for field_name, field in model.model_fields.items():
                default = (
                    "required"
                    if field.is_required()
                    else repr(field.get_default(call_default_factory=True))
                )
                typer.echo(f"  {section}.{field_name} = {default}: {field.description}")


@config_app.command("show")
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the resolved config as YAML."""
    import yaml

    cfg = _load(config, set_)
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


@config_app.command("schema")
def config_schema() -> None:
    """Print the config's JSON schema (every field with its description)."""
    from modalops.config import PipelineConfig

    typer.echo(json.dumps(PipelineConfig.model_json_schema(), indent=2))


# ---- modalops sync audit: the sync report card (issue 25, part 3) -----------------------------

sync_app = typer.Typer(no_args_is_help=True, help="Cross-stream clock sync: the report card.")
app.add_typer(sync_app, name="sync")


@sync_app.command("audit")
def sync_audit(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the page.")] = Path(
        "sync_report.html"
    ),
) -> None:
    """Align the config's dataset (as the pipeline does, without Prefect) and write the sync
    report card: one self-contained HTML page, worst session and stream first."""
    import tempfile

    from modalops.align import align_dataset
    from modalops.align.audit import render_sync_report, worst_first
    from modalops.dataset.load import load_dataset_spec
    from modalops.dataset.spec import SpecError
    from modalops.ingest import ingest_recordings
    from modalops.store import LocalStore

    cfg = _load(config, set_)
    raw = _open(cfg.ingest.raw_uri)
    try:
        spec = load_dataset_spec(raw, cfg.ingest.spec)
    except SpecError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    ingested = ingest_recordings(raw, spec, cfg.ingest)
    with tempfile.TemporaryDirectory(prefix="modalops-sync-") as tmp:  # the aligned parts
        result = align_dataset(raw, spec, ingested.catalog, cfg.align, LocalStore(tmp), "audit",
                               quarantine=ingested.quarantine)  # fmt: skip
    import pandas as pd

    # ingest's rows too: why a session's clock or stream was not usable, not only that
    quarantine = pd.concat([ingested.quarantine, result.quarantine], ignore_index=True)
    out.write_text(render_sync_report(result.report, result.traces, quarantine))
    counts = worst_first(result.report)["verdict"].value_counts()
    typer.echo(f"{out}: {result.report['session_id'].nunique()} sessions; "
               + ", ".join(f"{n} {v}" for v, n in counts.items()))  # fmt: skip


@server_app.command("start")
def server_start() -> None:
    """Start (or find) the local Prefect server and print its URL."""
    typer.echo(_prefect_api().removesuffix("/api"))


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server started by modalops."""
    from modalops.services import stop_prefect_server

    typer.echo("stopped" if stop_prefect_server(PREFECT_HOME) else "no local server was running")


@app.command()
def ui(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (a free one if taken).")] = 5000,
    background: Annotated[
        bool, typer.Option("--background", "-b", help="Leave it running and return.")
    ] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the one left running.")] = False,
) -> None:
    """MLflow's UI on 127.0.0.1 over the config's tracking store; prints where the runs view,
    the registered model and the Prefect UI are. Ctrl-C stops it (unless --background)."""
    from modalops.register.registry import absolute_tracking_uri
    from modalops.services import (
        ServiceError,
        find_mlflow_ui,
        start_mlflow_ui,
        stop_mlflow_ui,
    )
    from modalops.ui import MLFLOW_UI_HOME, describe_backend, served_by_tracking_server, ui_links

    if stop:
        typer.echo("stopped" if stop_mlflow_ui(MLFLOW_UI_HOME) else "no MLflow UI was running")
        return
    cfg = _load(config, set_)
    uri = absolute_tracking_uri(cfg.registry.tracking_uri)
    started = None
    if served_by_tracking_server(uri):
        url = uri  # a tracking server serves its own UI
    elif found := find_mlflow_ui(MLFLOW_UI_HOME):
        url = found.url
        typer.echo(f"MLflow UI already running (pid {found.pid}; modalops ui --stop)")
    else:
        typer.echo(f"starting MLflow's UI over {describe_backend(uri)} ...")
        try:
            started = start_mlflow_ui(MLFLOW_UI_HOME, uri, port)
        except ServiceError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
        url = started.url
    links = ui_links(url, uri, cfg.registry.experiment, cfg.registry.model_name, PREFECT_HOME)
    for line in links.lines(cfg.registry.experiment, cfg.registry.model_name):
        typer.echo(line)
    if started is None:
        return
    if background:
        typer.echo(f"log {started.log_path}; stop it with: modalops ui --stop")
        return
    typer.echo("Ctrl-C stops it")
    _wait_then_stop(started.pid)


def _wait_then_stop(pid: int) -> None:
    """Block until the UI's process ends or Ctrl-C, then stop it (its own process group)."""
    import time

    from modalops.services import stop_mlflow_ui
    from modalops.ui import MLFLOW_UI_HOME

    try:
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        stop_mlflow_ui(MLFLOW_UI_HOME)


@app.command()
def card(
    model: Annotated[str, typer.Argument(help="MODEL, MODEL@ALIAS or MODEL/VERSION.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_html: Annotated[
        bool, typer.Option("--html", help="The self-contained HTML page, not the Markdown.")
    ] = False,
) -> None:
    """Print a registered version's model card (a bare MODEL means its champion), read from
    the config's tracking store; a version registered without one gets one built from what it
    has."""
    from mlflow import MlflowClient

    from modalops.register.card_lookup import CardNotFound, read_card
    from modalops.register.registry import (
        RegistryReadError,
        TrackingUnavailableError,
        absolute_tracking_uri,
        tracking_errors,
    )
    from modalops.secrets import redact_uri

    cfg = _load(config, set_)
    uri = absolute_tracking_uri(cfg.registry.tracking_uri)
    # the card is the output: no download progress bars around it
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        with tracking_errors(uri, f"reading the model card of {model}"):
            text = read_card(MlflowClient(tracking_uri=uri), model, as_html=as_html)
    except CardNotFound as exc:
        typer.secho(f"modalops card: {exc} at {redact_uri(uri)}", fg="red", err=True)
        raise typer.Exit(1) from None
    except (RegistryReadError, TrackingUnavailableError) as exc:
        typer.secho(f"modalops card: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(text, nl=False)


@app.command()
def serve(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    cron: Annotated[str | None, typer.Option(help="Schedule, e.g. '0 2 * * *'.")] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
) -> None:
    """Serve the pipeline as a Prefect deployment: runs from the UI, and on `--cron`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import flow_parameters
    from flows.training_pipeline import training_pipeline

    cfg = _load(config, set_)
    with temporary_settings({PREFECT_API_URL: _prefect_api()}):
        training_pipeline.serve(
            name=name, cron=cron, parameters=flow_parameters(training_pipeline.fn, cfg)
        )


def run_batch_inference(cfg) -> dict:
    """Run the batch inference flow against PREFECT_API_URL or the local server."""
    from flows.batch_inference import batch_inference

    with _prefect_settings():
        return batch_inference(cfg)


def format_batch(result: dict, store_uri: str = "") -> str:
    """What `modalops infer` prints: the batch's summary and where its outputs are."""
    from modalops.infer.report import summary_markdown

    review = result.get("review") or {}
    where = f"the import file {review.get('import_json')} (no Label Studio running)"
    return "\n".join(
        [
            summary_markdown(
                result["summary"], {"predictions": result["predictions_key"]}, store_uri
            ),
            (
                f"- review: {review.get('tasks', 0)} tasks, {review.get('imported', 0)} new in "
                f"{review['url']}"
                if review.get("url")
                else f"- review: {review.get('tasks', 0)} tasks written to {where}"
            ),
            f"- MLflow run {result['mlflow_run_id']}",
        ]
    )


@app.command()
def infer(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Batch inference with the registered model on new recordings (see `inference.*`)."""
    from modalops.dataset.spec import SpecError
    from modalops.infer import ModelNotFound

    cfg = _load(config, set_)
    try:
        result = run_batch_inference(cfg)
    except (ModelNotFound, SpecError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(format_batch(result, cfg.store.uri))


@app.command()
def feedback(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Pull completed reviews from Label Studio into versioned label corrections."""
    from flows.feedback import feedback as feedback_flow

    cfg = _load(config, set_)
    with _prefect_settings():
        try:
            result = feedback_flow(cfg)
        except RuntimeError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    app()
