"""A registered version's model card read back from MLflow (`modalops card`): the card its run
logged, or, for a version registered without one, a card built from what the version has.

Apart from `card.py` because registration (registry.py) writes cards through `card.py`, and this
reads through registry.py's `registry_read`: one module for both would be an import cycle.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from modalops.register.card import (
    CARD_HTML,
    CARD_MD,
    NOT_RECORDED,
    CardSources,
    Section,
    alignment_of,
    build_card,
    profile_of,
)
from modalops.register.registry import registry_read


class CardNotFound(LookupError):
    """The registry answered that the model, alias or version asked for does not exist."""


def parse_model_ref(ref: str) -> tuple[str, str | None, str | None]:
    """`name`, `name@alias` or `name/3` as (name, alias, version); a bare name means champion."""
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        return name, alias, None
    head, _, tail = ref.rpartition("/")
    if head and tail.isdigit():
        return head, None, tail
    return ref, "champion", None


def find_version(client, ref: str) -> Any:
    """The model version `ref` names; CardNotFound where the registry says there is none, a
    RegistryReadError (naming the URI) where the read itself failed."""
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_ref(ref)
    if not name:
        raise CardNotFound(f"{ref!r}: expected MODEL, MODEL@ALIAS or MODEL/VERSION")
    with registry_read(client, f"model version {ref}", "building its model card"):
        try:
            if version is not None:
                return client.get_model_version(name, version)
            return client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            # an unknown alias is INVALID_PARAMETER_VALUE in MLflow's stores, a model or
            # version RESOURCE_DOES_NOT_EXIST
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND",
                                      "INVALID_PARAMETER_VALUE"):  # fmt: skip
                raise
    which = f"version {version}" if version else f"alias `{alias}`"
    raise CardNotFound(f"model {name!r} has no {which} in the registry (or no such model)")


def _download_text(client, run_id: str | None, path: str) -> str | None:
    """A run's text artifact, None where the run has no such file."""
    if not run_id:
        return None
    folder = path.rsplit("/", 1)[0]
    if path not in {f.path for f in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory(prefix="modalops-card-") as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_text()


def sources_from_registry(client, mv: Any) -> CardSources:
    """What a version registered without a card still has: tags, description, its run's
    dataset.yaml and evaluation report (or its pipeline run's), the pipeline's alignment."""
    from modalops.dataset.spec import spec_from_text

    tags = dict(mv.tags or {})
    missing = []
    run = client.get_run(mv.run_id) if mv.run_id else None
    spec_text = _download_text(client, mv.run_id, "dataset/dataset.yaml")
    spec = spec_from_text(spec_text, "dataset/dataset.yaml").to_dict() if spec_text else None
    if spec is None:
        missing.append(f"dataset spec (`dataset/dataset.yaml` of run {mv.run_id})")
    pipeline = tags.get("pipeline_run_id")
    report_text = _download_text(client, mv.run_id, "evaluation/report.json") or _download_text(
        client, pipeline, "evaluation/report.json"
    )
    report = json.loads(report_text) if report_text else None
    if report is None:
        missing.append("evaluation report (`evaluation/report.json` of the model or pipeline run)")
    gate_line = tags.get("gate.min_macro_f1", "")
    floor = re.search(r"minimum ([0-9.]+)", gate_line)
    return CardSources(
        model_name=mv.name,
        version=str(mv.version),
        spec=spec,
        report=report,
        version_tags=tags,
        run_id=mv.run_id,
        run_tags=dict(run.data.tags) if run else {},
        alignment=alignment_of(client.get_run(pipeline)) if pipeline else {},
        dataset_profile=profile_of(run) if run else {},
        gate_min_macro_f1=float(floor.group(1)) if floor else None,
        description=mv.description or None,
        missing=[f"{m}: {NOT_RECORDED}" for m in missing],
    )


def _title(text: str) -> str:
    """A card's title line, as `<title>` ends it (Markdown's `# ...` line, or HTML's)."""
    found = re.search(r"<title>([^<]*)</title>", text)
    return (found.group(1) if found else text.split("\n", 1)[0].removeprefix("# ")) + "<"


def read_card(client, ref: str, as_html: bool = False) -> str:
    """The card of the version `ref` names: its logged artifact, or one built from what the
    version has where it was registered without a card."""
    mv = find_version(client, ref)
    with registry_read(client, f"the model card of {mv.name}/{mv.version}", "printing it"):
        logged = _download_text(client, mv.run_id, CARD_HTML if as_html else CARD_MD)
        # a run's card is its own version's: another version made from the same run gets its own
        if logged is not None and f"Model card: {mv.name} v{mv.version}<" in _title(logged):
            return logged
        card = build_card(sources_from_registry(client, mv))
    note = Section(
        "About this card",
        [f"Version {mv.version} was registered without a model card (`{CARD_MD}`): this one "
         "is built now from what the version has; what it lacks is said so."],
    )  # fmt: skip
    card.sections.insert(0, note)
    return card.html() if as_html else card.markdown()
