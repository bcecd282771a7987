"""`modalops-demo`: write the demo recordings and run the whole pipeline on them (`make demo`)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from modalops.cli import (
    ConfigOpt,
    SetOpt,
    _load,
    _prefect_api,
    format_batch,
    format_summary,
    run_batch_inference,
    run_flow,
)
from modalops.deploy_cli import deploy_and_serve

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
DEMO_RAW = Path(".modalops") / "raw" / "demo"
DEMO_CONFIG = Path("configs/demo.yaml")


@app.command()
def run(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Generate the demo data (if absent), run the whole pipeline, print the outcome."""
    from modalops.store import open_store
    from modalops_demo.generate import DemoDataConfig, generate_demo_data
    from modalops_demo.names import SESSIONS_MANIFEST

    paths = config or ([DEMO_CONFIG] if DEMO_CONFIG.exists() else [])
    cfg = _load(paths, set_)
    raw = open_store(cfg.ingest.raw_uri, endpoint_url=cfg.store.endpoint_url)
    started = time.monotonic()
    with ThreadPoolExecutor(1, thread_name_prefix="demo-data") as pool:
        generating = None
        if not raw.exists(SESSIONS_MANIFEST):
            typer.echo(f"generating demo recordings into {raw.uri()} ...")
            generating = pool.submit(generate_demo_data, raw, DemoDataConfig())
        # the local Prefect server (its own process, ~15 s to start) comes up meanwhile
        _prefect_api()
        if generating is not None:
            generating.result()
    summary = run_flow(cfg)
    typer.echo(format_summary(summary, cfg, time.monotonic() - started))
    # the production loop on the champion's held-out sessions: what verification would route
    # to review, and how often those windows are wrong compared with the accepted ones
    held_out = cfg.model_copy(
        update={"inference": cfg.inference.model_copy(update={"sessions": "champion_test"})}
    )
    typer.echo("")
    typer.echo(format_batch(run_batch_inference(held_out), cfg.store.uri))
    typer.echo("  review them: .venv/bin/modalops review start, then .venv/bin/modalops infer "
               "--set inference.sessions=champion_test (docs/inference.md)")  # fmt: skip
    # leave the UI usable: the deployments registered with this config, and a worker serving them
    typer.echo("")
    deploy_and_serve(cfg, _prefect_api())


@app.command("data")
def data(
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
    """Write a deterministic industrial-safety recording set (with its dataset.yaml)."""
    from modalops.store import open_store
    from modalops_demo.generate import DemoDataConfig, generate_demo_data, parse_corrupt_specs

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


if __name__ == "__main__":
    app()
