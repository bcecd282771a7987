"""The `modalops` command line: demo data, pipeline runs, config inspection, local services."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
data_app = typer.Typer(no_args_is_help=True, help="Demo data.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the pipeline configuration.")
server_app = typer.Typer(no_args_is_help=True, help="The local Prefect server.")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(server_app, name="server")

STATE_DIR = Path(".modalops")
PREFECT_HOME = STATE_DIR / "prefect"
DEMO_RAW = STATE_DIR / "raw" / "demo"
DEMO_CONFIG = Path("configs/demo.yaml")

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
    typer.echo("starting a local Prefect server (first run takes ~15 s) ...")
    port = 4200
    from modalops.services import free_port, port_is_open

    if port_is_open(port):
        port = free_port()
    return start_prefect_server(PREFECT_HOME, port=port).url


def run_flow(cfg) -> dict:
    """Run the training pipeline flow against PREFECT_API_URL or the local server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.settings import PREFECT_HOME as HOME_SETTING

    from flows.training_pipeline import training_pipeline
    from modalops.run_timing import stage_times
    from modalops.validation import ValidationGateError

    api = _prefect_api()
    with temporary_settings({PREFECT_API_URL: api, HOME_SETTING: str(PREFECT_HOME.resolve())}):
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


@app.command()
def demo(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Generate the demo data (if absent), run the whole pipeline, print the outcome."""
    from modalops.demo_data import DemoDataConfig, generate_demo_data
    from modalops.schema import SESSIONS_MANIFEST
    from modalops.store import open_store

    paths = config or ([DEMO_CONFIG] if DEMO_CONFIG.exists() else [])
    cfg = _load(paths, set_)
    raw = open_store(cfg.ingest.raw_uri, endpoint_url=cfg.store.endpoint_url)
    started = time.monotonic()
    if not raw.exists(SESSIONS_MANIFEST):
        typer.echo(f"generating demo recordings into {raw.uri()} ...")
        generate_demo_data(raw, DemoDataConfig())
    summary = run_flow(cfg)
    typer.echo(format_summary(summary, cfg, time.monotonic() - started))


def format_summary(summary: dict, cfg, seconds: float) -> str:
    """The short table `modalops demo` prints."""
    uni = summary["unimodal_macro_f1"]
    width = max(len(m) for m in [*uni, "fused"]) + 2
    lines = [
        "",
        "modalops demo",
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
        f"  MLflow   .venv/bin/mlflow ui --backend-store-uri {cfg.registry.tracking_uri} --port 5000",
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


def _prefect_ui_hint() -> str:
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        from modalops.services import find_prefect_server

        api = find_prefect_server(PREFECT_HOME)
    if api:
        return f"{api.removesuffix('/api')}  (stop the local server: modalops server stop)"
    return "modalops server start"


@data_app.command("demo")
def data_demo(
    out: Annotated[
        Path, typer.Option(help="Where to write the raw layout (path or s3://).")
    ] = DEMO_RAW,
    sessions: Annotated[int, typer.Option(help="Number of sessions.")] = 40,
    duration: Annotated[float, typer.Option(help="Seconds per session.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    corrupt: Annotated[
        list[str] | None,
        typer.Option(help="Inject corruption, KIND=RATE (repeatable), e.g. --corrupt jpeg=0.05."),
    ] = None,
) -> None:
    """Write a deterministic industrial-safety recording set in the raw layout."""
    from modalops.demo_data import DemoDataConfig, generate_demo_data, parse_corrupt_specs
    from modalops.store import open_store

    try:
        cfg = DemoDataConfig(
            sessions=sessions,
            duration_s=duration,
            seed=seed,
            corrupt=parse_corrupt_specs(corrupt or []),
        )
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    summary = generate_demo_data(open_store(str(out)), cfg)
    typer.echo(f"wrote {cfg.sessions} sessions to {out}")
    typer.echo(str(summary))


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
def serve(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    cron: Annotated[str | None, typer.Option(help="Schedule, e.g. '0 2 * * *'.")] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
) -> None:
    """Serve the pipeline as a Prefect deployment: runs from the UI, and on `--cron`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    cfg = _load(config, set_)
    with temporary_settings({PREFECT_API_URL: _prefect_api()}):
        training_pipeline.serve(
            name=name, cron=cron, parameters={"cfg": cfg.model_dump(mode="json")}
        )


if __name__ == "__main__":
    app()
