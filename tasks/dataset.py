"""Dataset task: read the user's dataset spec and check the pipeline config against it."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.config.data import IngestConfig
from modalops.config.pipeline import PipelineConfig
from modalops.dataset.load import load_dataset_spec
from modalops.dataset.spec import DatasetSpec
from modalops.pipeline_plan import check_config_against_spec
from modalops.runs import RunContext
from modalops.store import open_store
from tasks.artifacts import publish_markdown


@task(retries=2, retry_delay_seconds=[2, 10])
def read_dataset_spec(run: RunContext, cfg: PipelineConfig) -> DatasetSpec:
    """The spec named in the config, else dataset.yaml at the raw root; kept with the run."""
    ingest: IngestConfig = cfg.ingest
    raw = open_store(ingest.raw_uri, endpoint_url=run.endpoint_url)
    spec = load_dataset_spec(raw, ingest.spec, endpoint_url=run.endpoint_url)
    check_config_against_spec(cfg, spec)
    run.store().put_text(run.key("dataset.yaml"), spec.to_yaml())
    streams = ", ".join(f"{n} ({s.kind})" for n, s in spec.streams.items())
    get_run_logger().info(
        "dataset %s: streams %s; classes %s", spec.name, streams, spec.labels.classes
    )
    publish_markdown(
        "dataset-spec",
        f"# Dataset spec `{spec.name}`\n\ndigest `{spec.digest()[:12]}`\n\n```yaml\n{spec.to_yaml()}```",
        "The dataset spec this run reads its recordings with",
    )
    return spec
