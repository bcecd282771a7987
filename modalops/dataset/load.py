"""Find and read the dataset spec of a run: named in the config, or dataset.yaml at the raw root."""

from __future__ import annotations

from typing import Any

from modalops.dataset.spec import SPEC_FILE, DatasetSpec, SpecError, load_spec_file, spec_from_text
from modalops.store import open_store


def load_dataset_spec(
    raw: Any, spec_uri: str | None = None, endpoint_url: str | None = None
) -> DatasetSpec:
    """The spec named in the pipeline config, else `dataset.yaml` at the raw root (`raw` is the
    raw ObjectStore). SpecError says where it looked."""
    if spec_uri is None:
        try:
            text = raw.get_bytes(SPEC_FILE).decode("utf-8")
        except FileNotFoundError:
            raise SpecError(
                f"{raw.uri(SPEC_FILE)}: no dataset spec at the raw root; write one "
                "(`modalops dataset init RAW` drafts it) or set ingest.spec"
            ) from None
        return spec_from_text(text, raw.uri(SPEC_FILE))
    if spec_uri.startswith("s3://"):
        parent, _, name = spec_uri.rpartition("/")
        try:
            text = open_store(parent, endpoint_url=endpoint_url).get_bytes(name).decode("utf-8")
        except FileNotFoundError:
            raise SpecError(f"{spec_uri}: dataset spec file not found") from None
        return spec_from_text(text, spec_uri)
    return load_spec_file(spec_uri)
