"""`modalops review ...`: install, start, stop and inspect the local Label Studio."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from modalops.config.review import ReviewConfig

review_app = typer.Typer(
    no_args_is_help=True, help="Human review in a local Label Studio (its own venv, 127.0.0.1)."
)

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Server home (default: review.home of the config).")
]


def _home(home: Path | None) -> Path:
    return home or Path(ReviewConfig().home)


@review_app.command("install")
def install(home: HomeOpt = None) -> None:
    """Install label-studio into its own venv (first time ~1-4 min; a no-op afterwards)."""
    from modalops.review.service import LABEL_STUDIO_VERSION, ensure_installed, venv_dir
    from modalops.services import ServiceError

    home = _home(home)
    typer.echo(
        f"label-studio=={LABEL_STUDIO_VERSION} in {venv_dir(home)} (log: {home}/install.log)"
    )
    started = time.monotonic()
    try:
        exe = ensure_installed(home)
    except ServiceError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ready: {exe} ({time.monotonic() - started:.0f} s)")


def login_lines(url: str, home: Path) -> list[str]:
    """Where and as whom to sign in; the password stays in its file (0600), never on screen."""
    from modalops.review.service import credentials, credentials_path

    path = credentials_path(home)
    return [
        f"Label Studio: {url}",
        f"  sign in as: {credentials(home)['email']}",
        f"  password and API token: in {path} (mode 0600), keys password and token",
        f"  e.g. python -c \"import json; print(json.load(open('{path}'))['password'])\"",
    ]


@review_app.command("start")
def start(
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: review.port).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Start the local Label Studio (installing it on first use); prints its URL and login."""
    from modalops.review.service import find_label_studio, start_label_studio
    from modalops.services import ServiceError

    home = _home(home)
    found = find_label_studio(home)
    if found:
        typer.echo("already running")
        url = found[0]
    else:
        typer.echo("starting Label Studio (first start installs it and migrates its database) ...")
        try:
            url = start_label_studio(home, port or ReviewConfig().port).url
        except ServiceError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
    for line in login_lines(url, home):
        typer.echo(line)


@review_app.command("stop")
def stop(home: HomeOpt = None) -> None:
    """Stop the local Label Studio."""
    from modalops.review.service import stop_label_studio

    typer.echo("stopped" if stop_label_studio(_home(home)) else "no Label Studio was running")


@review_app.command("status")
def status(home: HomeOpt = None) -> None:
    """Whether the local Label Studio answers, and where."""
    from modalops.review.service import credentials_path, find_label_studio, venv_dir

    home = _home(home)
    found = find_label_studio(home)
    if found:
        for line in login_lines(found[0], home):
            typer.echo(line)
    else:
        typer.echo("Label Studio: not running")
        typer.echo(f"credentials: {credentials_path(home)}")
    typer.echo(f"venv: {venv_dir(home)}")
    if not found:
        raise typer.Exit(1)
