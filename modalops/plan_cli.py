"""`modalops plan`: storage, compute hours and cost per day of recordings (modalops/plan.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def plan(
    hours_per_day: Annotated[
        float, typer.Option("--hours-per-day", help="Recorded hours per day to plan for.")
    ],
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="YAML config (a diff of the defaults)."),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override, e.g. align.hop_s=0.5.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run key to measure on (default: the latest).")
    ] = None,
    price_per_hour: Annotated[
        float | None,
        typer.Option(help="Compute price, $/h (default: evaluate.hourly_price_usd)."),
    ] = None,
    storage_price_gb_month: Annotated[
        float | None, typer.Option(help="Storage price, $/GB-month (default: no storage cost).")
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(help="Your dataset spec (default: the config's, else the run's own)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan storage and compute for HOURS of recordings a day from a finished run's measurements.

    Bytes per recorded hour come from the run's catalog, stage times from Prefect (or MLflow),
    training speed from the model runs, inference cost from the latest batch run; anything not
    measured is printed as `not measured`."""
    from modalops.config import ConfigError, load_config
    from modalops.dataset.load import load_dataset_spec
    from modalops.dataset.spec import SpecError, parse_spec
    from modalops.plan import (
        PlanError,
        format_plan,
        measure_run,
        plan_capacity,
        spec_stream_kinds,
        train_share,
    )
    from modalops.register.registry import TrackingUnavailableError
    from modalops.store import open_store

    try:
        cfg = load_config(config or [], set_ or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    store = open_store(cfg.store.uri, endpoint_url=cfg.store.endpoint_url)
    try:
        measured = measure_run(
            store,
            cfg.registry.tracking_uri,
            cfg.registry.experiment,
            cfg.registry.model_name,
            run_key=run,
        )
        try:
            if spec is not None:
                import yaml

                ds = parse_spec(yaml.safe_load(spec.read_text(encoding="utf-8")), str(spec))
            else:
                raw = open_store(cfg.ingest.raw_uri, endpoint_url=cfg.store.endpoint_url)
                ds = load_dataset_spec(raw, cfg.ingest.spec, cfg.store.endpoint_url)
        except (SpecError, FileNotFoundError) as exc:
            # the spec the measured run was built from travels with it
            key = f"runs/{measured.run_key}/dataset.yaml"
            if spec is not None or not store.exists(key):
                raise PlanError(str(exc)) from None
            import yaml

            ds = parse_spec(yaml.safe_load(store.get_text(key)), store.uri(key))
        result = plan_capacity(
            measured,
            spec_stream_kinds(ds),
            hours_per_day,
            hop_s=cfg.align.hop_s,
            price_per_hour=(
                cfg.evaluate.hourly_price_usd if price_per_hour is None else price_per_hour
            ),
            storage_price_gb_month=storage_price_gb_month,
            train_fraction=train_share(cfg.shard.val_fraction, cfg.shard.test_fraction),
        )
    except (PlanError, TrackingUnavailableError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(format_plan(result))
