"""`modalops privacy`: find every copy of a subject's data, and forget a subject."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

privacy_app = typer.Typer(
    no_args_is_help=True,
    help="Data-subject requests: where a subject's data is, and forgetting it.",
)

ConfigOpt = Annotated[
    list[Path] | None, typer.Option("--config", "-c", help="YAML config (a diff of the defaults).")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override, e.g. --set store.uri=...")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _context(config: list[Path] | None, overrides: list[str] | None):
    """(cfg, raw store, artifact store, spec, Label Studio target or None)."""
    from modalops.config import ConfigError, load_config
    from modalops.dataset.load import load_dataset_spec
    from modalops.store import open_store

    try:
        cfg = load_config(config or [], overrides or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    endpoint = cfg.store.endpoint_url
    raw = open_store(cfg.ingest.raw_uri, endpoint_url=endpoint)
    store = open_store(cfg.store.uri, endpoint_url=endpoint)
    spec = load_dataset_spec(raw, cfg.ingest.spec, endpoint_url=endpoint)
    try:
        from modalops.review.client import resolve_review_target

        target = resolve_review_target(cfg.review)
    except Exception:  # no server, or no token for a configured one: search the files only
        target = None
    return cfg, raw, store, spec, target


def _report(subject_id: str, config, overrides):
    from modalops.privacy import PrivacyError, find_subject

    cfg, raw, store, spec, target = _context(config, overrides)
    try:
        report = find_subject(
            raw,
            store,
            spec,
            subject_id,
            salt=cfg.ingest.subject_salt,
            tracking_uri=cfg.registry.tracking_uri,
            review_target=target,
            review_prefix=cfg.review.project_prefix,
        )
    except PrivacyError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    return raw, spec, report


def _print_table(report) -> None:
    rows = report.rows()
    width = max(len(r[0]) for r in rows)
    for what, ident, detail in rows:
        typer.echo(f"{what:<{width}}  {ident}  {detail}".rstrip())
    for note in report.caveats:
        typer.echo(f"note: {note}")


@privacy_app.command("subject")
def subject(
    subject_id: Annotated[str, typer.Argument(help="The subject id as in the sessions table.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The subject's pseudonym and every dataset version, model version, prediction file and
    review task holding their data."""
    _, _, report = _report(subject_id, config, set_)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_table(report)


@privacy_app.command("forget")
def forget(
    subject_id: Annotated[str, typer.Argument(help="The subject id as in the sessions table.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete (otherwise: a dry run).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the subject's raw data (session folders, sessions-table rows, label corrections)
    and write an audit record; list what must be rebuilt. Without --yes, only say what it would do."""
    from modalops.privacy import forget_subject

    raw, spec, report = _report(subject_id, config, set_)
    if not report.sessions:
        typer.secho(
            "no sessions of this subject in the sessions table: nothing to delete", err=True
        )
        raise typer.Exit(1)
    if not yes:
        typer.echo(
            f"would delete {len(report.raw_objects)} raw object(s) of {len(report.sessions)} "
            f"session(s), their sessions-table rows and {report.correction_rows} label "
            "correction row(s); then rebuild:"
        )
        _print_table(report)
        typer.secho("refusing without --yes (nothing was deleted)", fg="yellow", err=True)
        raise typer.Exit(1)
    record = forget_subject(raw, spec, report)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    deleted = record["deleted"]
    typer.echo(
        f"deleted {deleted['raw_objects']} raw object(s) of {deleted['sessions']} session(s), "
        f"{deleted['sessions_table_rows']} sessions-table row(s), "
        f"{deleted['label_correction_rows']} label-correction row(s)"
    )
    for what, ids in record["to_rebuild"].items():
        typer.echo(f"rebuild {what}: {', '.join(ids) or '-'}")
    for uri in record["still_holding_copies"]["prediction_files"]:
        typer.echo(f"delete or regenerate predictions: {uri}")
    if record["still_holding_copies"]["review_tasks"]:
        typer.echo(
            f"delete {record['still_holding_copies']['review_tasks']} review task(s) in: "
            + ", ".join(record["still_holding_copies"]["review_task_places"])
        )
    typer.echo(f"audit record: {raw.uri(record['audit_key'])}")
