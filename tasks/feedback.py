"""Feedback tasks: pull completed reviews from Label Studio; record them as label corrections."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task

from modalops.config.pipeline import PipelineConfig
from modalops.dataset.spec import DatasetSpec
from modalops.infer.feedback import record_feedback
from modalops.review.client import ReviewClient, resolve_review_target
from modalops.runs import RunContext, put_frame
from modalops.store import open_store
from tasks.artifacts import frame_markdown, publish_markdown


@task(retries=2, retry_delay_seconds=[5, 15])
def pull_reviews(run: RunContext, spec: DatasetSpec, cfg: PipelineConfig) -> pd.DataFrame:
    """Completed reviews of the model's project (modalops.review.client column contract)."""
    target = resolve_review_target(cfg.review)
    if target is None:
        raise RuntimeError(
            "feedback: no Label Studio to pull reviews from: set review.url (and the token in "
            f"${cfg.review.api_key_env}) or start the local one with `modalops review start`"
        )
    client = ReviewClient(*target, cfg.review.project_prefix)
    project = client.find_project(cfg.registry.model_name)
    if project is None:
        get_run_logger().info("no review project for %s yet", cfg.registry.model_name)
        return pd.DataFrame()
    reviews = client.completed_reviews(int(project["id"]))
    put_frame(run.store(), run.key("feedback", "reviews.parquet"), reviews)
    return reviews


@task(retries=1, retry_delay_seconds=[5])
def record_corrections(
    run: RunContext, spec: DatasetSpec, cfg: PipelineConfig, reviews: pd.DataFrame
) -> dict[str, Any]:
    """New reviews → the next corrections version next to the raw data; conflicts kept apart."""
    log = get_run_logger()
    raw = open_store(cfg.ingest.raw_uri, endpoint_url=run.endpoint_url)
    got = record_feedback(raw, spec, reviews, cfg.align.min_label_overlap)
    log.info(
        "%d reviews: %d new corrections, %d conflicts, %d already recorded (version %s)",
        len(reviews), len(got.written), len(got.conflicts), got.already_recorded, got.version,
    )  # fmt: skip
    cols = ["session_id", "t_start", "t_end", "label", "existing_label", "existing_source",
            "reviewer"]  # fmt: skip
    publish_markdown(
        "feedback",
        f"# Feedback\n\n- reviews pulled: {len(reviews)}\n- corrections written: "
        f"{len(got.written)} (version {got.version})\n- conflicts (not applied): "
        f"{len(got.conflicts)}\n- already recorded: {got.already_recorded}\n\n## Conflicts\n\n"
        + frame_markdown(got.conflicts[cols] if len(got.conflicts) else None),
        "Reviewed labels recorded as corrections, and conflicts with earlier labels",
    )
    return {
        "reviews": int(len(reviews)),
        "written": int(len(got.written)),
        "conflicts": int(len(got.conflicts)),
        "already_recorded": int(got.already_recorded),
        "version": got.version,
        "keys": [raw.uri(k) for k in got.keys],
    }
