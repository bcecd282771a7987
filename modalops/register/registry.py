"""MLflow logging, model registration and the champion promotion gate.

The registered model carries the dataset spec it was trained on (`dataset.yaml`, logged with the
model and the run, and its digest as a tag), so a consumer decodes with that spec.
A new version always gets alias `challenger`; `champion` moves only when the gate passes against
the current champion re-scored on the same test samples (or with an explicit, recorded `force`).
Promotions are serialised per model name, so two pipelines finishing together cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import math
import os
import re
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalops.config.evaluate import PromotionGateConfig
from modalops.evaluate import metrics
from modalops.register.card import (
    CARD_MD,
    DESCRIPTION_LIMIT,
    ModelCard,
    card_at_registration,
    description_of,
    log_card,
)
from modalops.register.code_version import code_tags
from modalops.register.describe import (
    MODEL_HEADLINE,
    ModelFacts,
    model_description,
    version_description,
)
from modalops.register.fingerprint import FINGERPRINT_TAG, model_digest, registration_fingerprint
from modalops.secrets import redact_uri

CHAMPION = "champion"
CHALLENGER = "challenger"
SECRET_WORDS = ("secret", "password", "token", "key", "credential")
_TAG_LIMIT = 4900  # MLflow tag values are capped at 5000 characters


class PromotionLockTimeout(TimeoutError):
    """Another pipeline held the promotion lock for longer than the configured timeout."""


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server did not answer within MLflow's HTTP retries."""


class RegistryReadError(RuntimeError):
    """A registry read failed for another reason than "not there"; the decision it was read
    for (register, reuse, promote) was not taken."""


# The only answers that mean "absent". Anything else (a locked database, a 500, a refused
# connection) is a failed read: taken as "nothing there", a failed fingerprint search created
# a second version and a failed champion read promoted without comparing (issue 23).
ABSENT_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


def _absent(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in ABSENT_CODES


@contextlib.contextmanager
def registry_read(client, what: str, deciding: str) -> Iterator[None]:
    """An MlflowException inside as one RegistryReadError naming `what` was read, the tracking
    URI (password masked) and what it was read for (`deciding`)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        # from None: MLflow's message may carry a URL with a password; it is shown redacted.
        # The cause stays in __context__, where tracking_errors finds an unreachable server.
        raise RegistryReadError(
            f"could not read {what} at {redact_uri(_tracking_uri_of(client))} while {deciding} "
            f"({exc.error_code}: {redact_uri(exc.message)[:2000]}); nothing was decided, "
            "nothing registered or promoted: retry once the registry answers"
        ) from None


# MLflow's own HTTP retry budget per call to a tracking server. Its defaults (7 retries, backoff
# factor 2, 120 s timeout) spend about 4 minutes on each call to a dead server before a task's
# own retries start; these bound it to ~15 s. Variables already set are kept.
HTTP_RETRY_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_http_retries() -> dict[str, str]:
    """Fill in `HTTP_RETRY_BOUNDS` for the variables not set (process-wide: MLflow reads them
    from the environment at every request); returns the values in force."""
    for name, value in HTTP_RETRY_BOUNDS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in HTTP_RETRY_BOUNDS}


def _unreachable(exc: BaseException) -> bool:
    """Whether `exc` (an MlflowException wrapping a `requests` error) means no answer at all."""
    import requests

    kinds = (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)
    seen: BaseException | None = exc
    for _ in range(10):  # MLflow wraps implicitly (__context__) or explicitly (__cause__)
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def tracking_errors(tracking_uri: str, stage: str) -> Iterator[None]:
    """A tracking server that does not answer, as one TrackingUnavailableError naming the
    tracking URI (password masked), MLflow's retry budget and the way to recover."""
    try:
        yield
    except Exception as exc:
        if not _unreachable(exc):
            raise
        budget = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in HTTP_RETRY_BOUNDS)
        text = str(exc)
        call = re.search(r"API request to \S*?(/api/\S+?)[?\s]", text)
        cause = re.search(
            r"\[Errno -?\d+\] [^\"')]+|timed? ?out|too many \d+ error responses", text
        )
        what = (
            f"{call.group(1) if call else 'a request'}: {cause.group(0) if cause else 'no answer'}"
        )
        # from None: MLflow's own message carries the URL, and a URL may carry a password
        raise TrackingUnavailableError(
            f"MLflow tracking server {redact_uri(tracking_uri)} did not answer during {stage} "
            f"({what}; MLflow HTTP retries: {budget}). Nothing is lost: re-run the flow once "
            "the server answers; finished stages are cache hits, and a version this run left "
            "half-done is finished, never registered twice (same fingerprint)."
        ) from None


# ---- scores the gate compares -------------------------------------------------------------------


@dataclass
class GateScores:
    """What the gate compares for one model version on one set of test samples."""

    macro_f1: float
    ece: float
    slice_f1: dict[str, float] = field(default_factory=dict)  # "column=value" -> macro-F1
    flagged: list[str] = field(default_factory=list)  # slices the report flagged (challenger)
    version: str | None = None  # the registered version these scores belong to
    n: int = 0


RawSamples = Callable[[], Iterable[Mapping[str, Any]]]
"""A re-readable source of raw samples: each call starts a new pass, in the same order."""

# The serving config's default batch_size: batches of this size reach the pyfunc's own
# predict_logits batches unchanged, so batched scoring runs the very same forward passes.
RESCORING_BATCH_SIZE = 64


@dataclass
class RescoringSet:
    """The test samples every candidate and the champion are scored on: truth + pyfunc inputs.

    The truth (labels, meta) is held in memory; the inputs are not: `input_batches()` re-reads
    `source` and converts `batch_size` samples at a time, so scoring holds one batch of payloads.
    """

    labels: np.ndarray
    meta: pd.DataFrame
    classes: list[str]  # the spec's classes, in index order
    source: RawSamples
    spec: Any  # the DatasetSpec whose streams are the input columns
    slices: list[str] = field(default_factory=list)
    ece_bins: int = 10
    batch_size: int = RESCORING_BATCH_SIZE

    @classmethod
    def from_source(
        cls,
        source: RawSamples,
        spec: Any,
        slices: Sequence[str] | None = None,
        ece_bins: int = 10,
        batch_size: int = RESCORING_BATCH_SIZE,
    ) -> RescoringSet:
        """From a re-readable source (e.g. `lambda: shard.iter_raw_samples(store, m, "test")`):
        one pass now for the truth, one per scoring pass for the inputs.

        `slices` default to the spec's metadata.slices.
        """
        if batch_size < 1:
            raise ValueError(f"rescoring: batch_size must be at least 1, got {batch_size}")
        labels, meta = [], []
        for s in source():
            labels.append(int(s["label_index"]))
            meta.append(dict(s.get("meta") or {}))
        return cls(
            labels=np.array(labels, dtype=np.int64),
            meta=pd.DataFrame(meta),
            classes=list(spec.labels.classes),
            source=source,
            spec=spec,
            slices=list(spec.metadata.slices if slices is None else slices),
            ece_bins=ece_bins,
            batch_size=batch_size,
        )

    @classmethod
    def from_raw_samples(
        cls,
        samples: Sequence[Mapping[str, Any]],
        spec: Any,
        slices: Sequence[str] | None = None,
        ece_bins: int = 10,
        batch_size: int = RESCORING_BATCH_SIZE,
    ) -> RescoringSet:
        """From raw samples in memory, as yielded by shard.iter_raw_samples (tests, small sets).

        `slices` default to the spec's metadata.slices.
        """
        held = list(samples)
        return cls.from_source(lambda: iter(held), spec, slices, ece_bins, batch_size)

    def input_batches(self) -> Iterator[pd.DataFrame]:
        """The pyfunc input table, `batch_size` rows at a time, in the order of the truth.

        An empty set yields one empty table. A source that no longer matches the truth read
        at construction (other labels, more or fewer samples) is refused.
        """
        from modalops.evaluate.evaluation import iter_batches
        from modalops.serving.pyfunc import to_input_frame

        empty = True
        for batch in iter_batches(self._checked_samples(), self.batch_size):
            empty = False
            yield to_input_frame(batch, self.spec)
        if empty:
            yield to_input_frame([], self.spec)

    def _checked_samples(self) -> Iterator[Mapping[str, Any]]:
        """One pass over `source`, refused where it no longer matches the truth."""
        seen = 0
        for sample in self.source():
            if seen >= len(self.labels) or int(sample["label_index"]) != self.labels[seen]:
                raise ValueError(
                    f"rescoring: test sample {seen} differs from the one the truth was read "
                    "from; the source must give the same samples in the same order every pass"
                )
            seen += 1
            yield sample
        if seen != len(self.labels):
            raise ValueError(
                f"rescoring: the source gave {seen} test samples, the truth has {len(self.labels)}"
            )

    def input_example(self, n: int = 2) -> pd.DataFrame:
        """The first `n` input rows (the MLflow input example), reading no more batches than needed."""
        frames, rows = [], 0
        batches = self.input_batches()
        try:
            for frame in batches:
                frames.append(frame.head(n - rows).copy())  # not a view pinning the batch
                rows += len(frames[-1])
                if rows >= n:
                    break
        finally:
            batches.close()
        return pd.concat(frames, ignore_index=True)

    @property
    def inputs(self) -> pd.DataFrame:
        """The whole input table at once: for tests and small callers, not for the pipeline
        (it holds every test sample's payloads; scoring uses `input_batches`)."""
        return pd.concat(list(self.input_batches()), ignore_index=True)


def predict_in_batches(model: Any, data: RescoringSet) -> pd.DataFrame:
    """`model.predict` over the set one input batch at a time; the (light) outputs concatenated.

    The same table as predicting the whole input at once: the pyfunc scores rows independently
    (per-row decode, fixed-shape tensors, the classifier in eval mode).
    """
    preds = []
    for frame in data.input_batches():
        preds.append(model.predict(frame))
        del frame  # let the next batch replace this one, not join it
    return pd.concat(preds, ignore_index=True)


def score_predictions(pred: pd.DataFrame, data: RescoringSet) -> GateScores:
    """Gate scores from a pyfunc output table (label + prob_<class> columns)."""
    if len(pred) != len(data.labels):
        raise ValueError(f"scoring: {len(pred)} predictions for {len(data.labels)} test samples")
    classes = list(data.classes)
    index = {name: i for i, name in enumerate(classes)}
    try:
        y_pred = np.array([index[str(x)] for x in pred["label"]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"scoring: the model predicted unknown label {exc.args[0]!r}") from None
    prob_cols = [f"prob_{name}" for name in classes]
    probs = pred[prob_cols].to_numpy(dtype=np.float64) if set(prob_cols) <= set(pred) else None
    slice_f1 = {}
    for column in data.slices:
        if column not in data.meta.columns:
            continue
        values = data.meta[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            m = values == value
            slice_f1[f"{column}={value}"] = metrics.macro_f1(
                data.labels[m], y_pred[m], len(classes)
            )
    return GateScores(
        macro_f1=metrics.macro_f1(data.labels, y_pred, len(classes)),
        ece=metrics.ece(probs, data.labels, data.ece_bins) if probs is not None else float("nan"),
        slice_f1=slice_f1,
        n=len(y_pred),
    )


def score_model_uri(model_uri: str, data: RescoringSet) -> GateScores:
    """Load a pyfunc (e.g. models:/name/3) and score it on the rescoring set."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    return score_predictions(predict_in_batches(model, data), data)


# ---- the gate ------------------------------------------------------------------------------------


@dataclass
class GateCheck:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class PromotionDecision:
    """The outcome; `decision` is promoted, refused, forced or stale (champion moved meanwhile)."""

    model_name: str
    version: str
    promoted: bool
    decision: str
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)
    previous_champion: str | None = None
    requested_by: str | None = None
    force_reason: str | None = None
    decided_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def check_gate(
    gate: PromotionGateConfig, challenger: GateScores, champion: GateScores | None
) -> list[GateCheck]:
    """Every check of the gate, passed or not, each with a reason a person can read."""
    checks = [
        GateCheck(
            "min_macro_f1",
            _finite(challenger.macro_f1) and challenger.macro_f1 >= gate.min_macro_f1,
            f"macro-F1 {challenger.macro_f1:.4f} vs minimum {gate.min_macro_f1:.4f}",
        )
    ]
    if champion is None:
        checks.append(GateCheck("champion", True, "no champion yet: first registration"))
        return checks
    delta = challenger.macro_f1 - champion.macro_f1
    checks.append(
        GateCheck(
            "beats_champion",
            _finite(delta) and delta > 0 and delta >= gate.min_improvement,
            f"macro-F1 {challenger.macro_f1:.4f} vs champion v{champion.version} "
            f"{champion.macro_f1:.4f} on the same {challenger.n} test samples "
            f"(change {delta:+.4f}, required > 0 and >= {gate.min_improvement:.4f})",
        )
    )
    for name in challenger.flagged:
        new, old = challenger.slice_f1.get(name), champion.slice_f1.get(name)
        if not (_finite(new) and _finite(old)):
            checks.append(GateCheck(f"slice {name}", True, "not scored for both models; skipped"))
            continue
        drop = old - new
        checks.append(
            GateCheck(
                f"slice {name}",
                drop <= gate.max_slice_regression + 1e-12,
                f"flagged slice macro-F1 {new:.4f} vs champion {old:.4f} "
                f"(regression {drop:+.4f}, allowed {gate.max_slice_regression:.4f})",
            )
        )
    if _finite(challenger.ece) and _finite(champion.ece):
        worse = challenger.ece - champion.ece
        checks.append(
            GateCheck(
                "ece",
                worse <= gate.max_ece_increase + 1e-12,
                f"ECE {challenger.ece:.4f} vs champion {champion.ece:.4f} "
                f"(increase {worse:+.4f}, allowed {gate.max_ece_increase:.4f})",
            )
        )
    return checks


# ---- serialising promotions -----------------------------------------------------------------------


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///") :]).expanduser().resolve()


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with open(path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PromotionLockTimeout(
                        f"{path}: promotion lock still held after {timeout_s:.0f} s "
                        "(another pipeline is promoting; retry later)"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _pg_advisory_lock(tracking_uri: str, model_name: str, timeout_s: float) -> Iterator[None]:
    import sqlalchemy

    key = zlib.crc32(f"modalops-promotion:{model_name}".encode())
    engine = sqlalchemy.create_engine(tracking_uri, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'"))
        # Session-level advisory lock: held until unlocked or the connection closes.
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    engine.dispose()


@contextlib.contextmanager
def promotion_lock(tracking_uri: str, model_name: str, timeout_s: float = 120.0) -> Iterator[None]:
    """Serialise promotions of one model name.

    SQLite: a file lock next to the database (every writer shares that file system).
    PostgreSQL: an advisory lock in the database itself. Other backends (an HTTP tracking
    server): a file lock in the temp directory, which serialises pipelines on this host only;
    the alias is re-read after setting it to catch anything else.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
    db = _sqlite_path(tracking_uri)
    if db is not None:
        with _file_lock(db.with_name(f"{db.name}.{safe}.promotion.lock"), timeout_s):
            yield
    elif tracking_uri.startswith(("postgresql", "postgres")):
        with _pg_advisory_lock(tracking_uri, model_name, timeout_s):
            yield
    else:
        digest = hashlib.sha256(f"{tracking_uri}|{model_name}".encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / "modalops-locks" / f"{safe}-{digest}.lock"
        with _file_lock(path, timeout_s):
            yield


def current_champion(client, model_name: str, deciding: str = "reading the champion") -> str | None:
    """Version currently holding alias champion; None only where the registry says there is
    none (no such model, or no such alias). A failed read raises RegistryReadError naming
    `deciding`."""
    model = _registered_model(client, model_name, f"the champion of model {model_name}", deciding)
    version = (getattr(model, "aliases", None) or {}).get(CHAMPION) if model else None
    return None if version is None else str(version)


def _registered_model(client, name: str, what: str, deciding: str) -> Any | None:
    """The registered model `name`; None where MLflow answers that it does not exist."""
    from mlflow.exceptions import MlflowException

    with registry_read(client, what, deciding):
        try:
            return client.get_registered_model(name)
        except MlflowException as exc:
            if _absent(exc):
                return None
            raise


def _tracking_uri_of(client) -> str:
    uri = getattr(client, "tracking_uri", None) or getattr(
        getattr(client, "_tracking_client", None), "tracking_uri", None
    )
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    return str(uri)


def _record(client, decision: PromotionDecision) -> None:
    """The gate's reasons and checks as version tags; `promotion.decision` is not among them
    (promote_if_better writes it last, once the alias has moved)."""
    tags = {
        "promotion.reasons": "\n".join(decision.reasons)[:_TAG_LIMIT],
        "promotion.compared_to": decision.previous_champion or "none",
        "promotion.decided_at": decision.decided_at,
    }
    if decision.requested_by:
        tags["promotion.requested_by"] = decision.requested_by
    if decision.force_reason:
        tags["promotion.force_reason"] = decision.force_reason[:_TAG_LIMIT]
    for check in decision.checks:
        key = "gate." + re.sub(r"[^A-Za-z0-9_.-]", "_", check.name)
        tags[key[:250]] = check.line()[:_TAG_LIMIT]
    for k, v in tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, k, v)


def promote_if_better(
    client,
    model_name: str,
    version: str | int,
    gate: PromotionGateConfig,
    challenger_scores: GateScores,
    champion_rescored_scores: GateScores | None,
    force: bool = False,
    requested_by: str | None = None,
    reason: str | None = None,
    lock_timeout_s: float = 120.0,
) -> PromotionDecision:
    """Move `champion` to `version` if the gate passes (or `force`), under the promotion lock.

    `champion_rescored_scores` must belong to the champion at decision time (None: no champion).
    If another pipeline moved the champion meanwhile, nothing changes and the decision is
    `stale`: re-score the new champion and call again (log_and_register does).
    """
    version = str(version)
    if force and not (requested_by and reason):
        raise ValueError(
            "force=True needs requested_by and reason; both are recorded on the version"
        )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    deciding = f"deciding whether v{version} becomes champion"
    with promotion_lock(_tracking_uri_of(client), model_name, lock_timeout_s):
        champion = current_champion(client, model_name, deciding)
        expected = champion_rescored_scores.version if champion_rescored_scores else None
        if champion == version:
            decision = PromotionDecision(
                model_name, version, True, "promoted", [f"v{version} is already champion"],
                previous_champion=champion, decided_at=now,
            )  # fmt: skip
            return decision
        if champion != (str(expected) if expected is not None else None):
            return PromotionDecision(
                model_name,
                version,
                False,
                "stale",
                [f"champion is v{champion}, but scores were given for v{expected}; re-score"],
                previous_champion=champion,
                decided_at=now,
            )
        checks = check_gate(gate, challenger_scores, champion_rescored_scores)
        passed = all(c.passed for c in checks)
        reasons = [c.line() for c in checks]
        if passed:
            outcome = "promoted"
        elif force:
            outcome = "forced"
            reasons.append(f"FORCED by {requested_by}: {reason}")
        else:
            outcome = "refused"
        decision = PromotionDecision(
            model_name=model_name,
            version=version,
            promoted=outcome in ("promoted", "forced"),
            decision=outcome,
            reasons=reasons,
            checks=checks,
            previous_champion=champion,
            requested_by=requested_by if force else None,
            force_reason=reason if force else None,
            decided_at=now,
        )
        _record(client, decision)
        if decision.promoted:
            client.set_registered_model_alias(model_name, CHAMPION, version)
            if champion is not None:
                client.set_model_version_tag(
                    model_name, champion, "promotion.superseded_by", version
                )
            # Re-read: the lock covers pipelines using this module; this catches anyone else.
            after = current_champion(client, model_name, f"checking v{version} became champion")
            if after != version:
                decision.promoted = False
                decision.decision = "stale"
                decision.reasons.append(f"champion changed to v{after} while promoting")
        # Last: registration_of reads this tag as "the gate ran to the end". Written before the
        # alias, a crash in between left a version recorded `promoted` that a retry reused
        # without ever making it champion (tests/test_registry_faults.py).
        client.set_model_version_tag(model_name, version, "promotion.decision", decision.decision)
        return decision


# ---- logging ---------------------------------------------------------------------------------------


def _secret_env_values() -> set[str]:
    return {
        v
        for k, v in os.environ.items()
        if any(w in k.lower() for w in SECRET_WORDS) and v and len(v) >= 4
    }


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted params from a nested config, without secrets.

    Keys naming a secret are dropped, values equal to a secret environment variable are
    dropped, and passwords inside URIs are masked.
    """
    secrets = _secret_env_values()
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
            return
        leaf = path.rsplit(".", 1)[-1].lower()
        if any(w in leaf for w in SECRET_WORDS):
            return
        text = json.dumps(node) if isinstance(node, (list, tuple)) else str(node)
        if any(s in text for s in secrets):
            return
        out[path] = redact_uri(text)[:6000]

    walk(config, prefix)
    return out


@dataclass
class RegistrationResult:
    run_id: str
    model_version: str
    aliases: list[str]
    promoted: bool
    reasons: list[str]
    decision: PromotionDecision | None = None
    model_uri: str = ""
    model_name: str = ""
    reused: bool = False  # an existing version with the same fingerprint, nothing registered


# MLflow 3's UI opens an experiment of this kind on its runs (the classic runs table and charts),
# not on the GenAI traces and evaluation pages it shows an experiment of unknown kind.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def _ensure_experiment(client, name: str, artifact_location: str | None) -> str:
    exp = client.get_experiment_by_name(name)  # None only where MLflow says it does not exist
    if exp is not None:
        if EXPERIMENT_KIND_TAG not in (exp.tags or {}):
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(
            name,
            artifact_location=artifact_location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another pipeline created it between our lookup and create.
        return client.get_experiment_by_name(name).experiment_id


def log_and_register(
    tracking_uri: str,
    experiment: str,
    model_name: str,
    checkpoint_path: str | Path,
    report: Any,
    config_dict: Mapping[str, Any],
    tags: Mapping[str, str],
    artifacts: Mapping[str, str | Path],
    test_samples_for_rescoring: RescoringSet,
    gate: PromotionGateConfig | None = None,
    force: bool = False,
    requested_by: str | None = None,
    reason: str | None = None,
    artifact_location: str | None = None,
    loader: str | None = None,
    extra_code_paths: Sequence[str | Path] = (),
    lock_timeout_s: float = 120.0,
    dataset_spec: Any = None,
    dataset_input: Any = None,
    run_id: str | None = None,
    model_step: int = 0,
    fingerprint: str | None = None,
) -> RegistrationResult:
    """Log the pyfunc (with the spec) in a run, register it, and gate `champion`.

    `fingerprint` (see `registration_fingerprint`) makes it idempotent: a version whose tags
    carry it is reused (no new run, model or version, aliases untouched once its gate ran); a
    retry after a failure half-way reuses the run and the logged model the failed attempt left.

    `run_id` None: a new run is created and closed here with the config as params, the report,
    its metrics and `artifacts` (artifact path -> local file). `run_id` given (the pipeline's
    fused CHILD run, see `register.tracking`): the model, the report's metrics and
    `registration/gate.json` go into that run, which keeps its own params, lifecycle and end
    time; the version is created with that run id, so it links to the run that trained it.
    `model_step` is the epoch the checkpoint comes from: MLflow copies the run's metrics at that
    step onto the logged model.

    `report` is an evaluate.EvaluationReport of this model; its calibration temperature and
    abstention threshold go into the served model, and the gate decision is written back into it.
    The spec comes from the checkpoint (the one the model was trained on); `dataset_spec`, when
    given, must be compatible with it. `dataset_input` is an mlflow Dataset logged as the run's
    input (see `dataset_input_of`).
    """
    import mlflow
    from mlflow import MlflowClient

    from modalops.serving.pyfunc import (
        CHECKPOINT_ARTIFACT,
        DEFAULT_LOADER,
        SERVING_CONFIG_ARTIFACT,
        SPEC_ARTIFACT,
        MultimodalPyfunc,
        package_dir,
        pip_requirements,
        serving_config,
    )
    from modalops.serving.signature import model_signature

    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint_path} does not exist")
    loader_ref = loader or DEFAULT_LOADER
    model = _load_for_registration(checkpoint_path, loader_ref)
    spec = model.spec
    if dataset_spec is not None:
        spec.check_compatible(dataset_spec, what=f"checkpoint {checkpoint_path.name}")
    digest = spec.digest()
    gate = gate or PromotionGateConfig()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    db = _sqlite_path(tracking_uri)
    if artifact_location is None and db is not None:
        # MLflow's default is ./mlruns under the current directory: keep artifacts by the DB.
        artifact_location = (db.parent / "mlartifacts").as_uri()
    own_run = run_id is None
    tags = {**dict(tags), "dataset_spec_digest": digest, "dataset_name": spec.name}
    if fingerprint:
        tags[FINGERPRINT_TAG] = fingerprint
    str_tags = {k: str(v) for k, v in tags.items() if v is not None}

    # Idempotence: a version with this fingerprint (an earlier run, or an earlier attempt of
    # this task) is reused, never registered again.
    existing = find_registered_version(client, model_name, fingerprint) if fingerprint else None
    if existing is not None:
        done = registration_of(client, model_name, existing)
        if done is not None:
            return done
        # registered, but the attempt that did it stopped before the gate: finish its job
        version, run_id, model_uri = str(existing.version), existing.run_id, existing.source
        own_run = False
    else:
        version, model_uri = None, None
    if version is None and own_run:
        experiment_id = _ensure_experiment(client, experiment, artifact_location)
        earlier = None
        if fingerprint:  # a retried attempt finds the run the first one created
            found = client.search_runs(
                [experiment_id],
                f"tags.`{FINGERPRINT_TAG}` = '{fingerprint}'",
                max_results=1,
            )
            earlier = found[0].info.run_id if found else None
        run_id = (
            earlier
            or client.create_run(experiment_id, tags={**code_tags(), **str_tags}).info.run_id
        )
    if version is None:
        original = client.get_run(run_id).info
        if not own_run:
            for k, v in str_tags.items():
                client.set_tag(run_id, k, v)
        model_uri = _logged_model_uri(client, run_id, fingerprint)

    with tempfile.TemporaryDirectory(prefix="modalops-register-") as tmp:
        if version is None:
            example = test_samples_for_rescoring.input_example(2)
            spec_path = Path(tmp) / "dataset.yaml"
            spec_path.write_text(spec.to_yaml())
        if version is None and model_uri is None:
            cfg_path = Path(tmp) / "serving_config.json"
            cfg_path.write_text(
                json.dumps(
                    serving_config(
                        temperature=float(report.calibration.get("temperature") or 1.0),
                        threshold=float(report.abstention.get("threshold") or 0.0),
                        labels=spec.labels.classes,
                        spec_digest=digest,
                        streams=list(model.streams),
                        window_s=float(model.window_s),
                        loader=loader_ref,
                    )
                )
            )
            if own_run:
                params = flatten_config(config_dict)
                params["dataset.spec_digest"] = digest
                items = list(params.items())
                for i in range(0, len(items), 100):
                    client.log_batch(run_id, params=[_param(k, v) for k, v in items[i : i + 100]])
            client.log_artifact(run_id, str(spec_path), artifact_path="dataset")
            if dataset_input is not None:
                _log_dataset_input(client, run_id, dataset_input)
            if own_run:
                client.log_text(run_id, report.to_json(), "evaluation/report.json")
                client.log_text(run_id, report.headline_markdown(), "evaluation/headline.md")
            for name, path in artifacts.items():
                folder = name.rsplit("/", 1)[0] if "/" in name else None
                client.log_artifact(run_id, str(path), artifact_path=folder)
            # pyfunc.log_model logs into the active run: resume ours for the call
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=MultimodalPyfunc(),
                    artifacts={
                        CHECKPOINT_ARTIFACT: str(checkpoint_path),
                        SERVING_CONFIG_ARTIFACT: str(cfg_path),
                        SPEC_ARTIFACT: str(spec_path),
                    },
                    code_paths=[package_dir(), *[str(p) for p in extra_code_paths]],
                    pip_requirements=pip_requirements(),
                    signature=model_signature(spec),
                    input_example=example,
                    metadata={"dataset_spec_digest": digest, "dataset_name": spec.name},
                    step=int(model_step),
                )
            model_uri = info.model_uri
            log_model_metrics(client, run_id, info.model_id, report, int(model_step))
            if fingerprint:  # at once: a retry from here on reuses this logged model
                client.set_tag(
                    run_id,
                    LOGGED_MODEL_TAG,
                    json.dumps({"fingerprint": fingerprint, "model_uri": model_uri}),
                )
        if version is None and not own_run and original.end_time is not None:
            # resuming set the run RUNNING and its end to now: give it back its own
            client.set_terminated(run_id, status=original.status, end_time=original.end_time)
        elif version is None and not own_run:
            client.update_run(run_id, status=original.status)
    if version is None:
        # Find-or-create under a per-model lock: two pipelines with the same fingerprint
        # finishing together register it once.
        with promotion_lock(tracking_uri, f"{model_name}.register", lock_timeout_s):
            existing = (
                find_registered_version(client, model_name, fingerprint) if fingerprint else None
            )
            if existing is None:
                mv = client.create_model_version(
                    model_name
                    if _registered(client, model_name, f"creating a version of {model_name}")
                    else _create_registered(client, model_name),
                    source=model_uri,
                    run_id=run_id,
                    tags=str_tags,
                    model_id=model_id_of(model_uri),
                )
            else:
                mv = existing
                run_id = existing.run_id
        version = str(mv.version)
        if existing is not None:  # another pipeline registered the same model meanwhile
            done = registration_of(client, model_name, existing)
            if done is not None:
                return done
    _wait_ready(client, model_name, version)
    link_logged_model(client, model_name, version, model_id_of(model_uri or ""))
    client.set_registered_model_alias(model_name, CHALLENGER, version)

    challenger = score_model_uri(f"models:/{model_name}/{version}", test_samples_for_rescoring)
    challenger.version = version
    challenger.flagged = list(report.flagged_slices()) if hasattr(report, "flagged_slices") else []
    decision = None
    for _attempt in range(5):
        champion_version = current_champion(
            client, model_name, f"choosing the champion to re-score against v{version}"
        )
        champion_scores = None
        if champion_version is not None and champion_version != version:
            try:
                champion_scores = score_model_uri(
                    f"models:/{model_name}/{champion_version}", test_samples_for_rescoring
                )
            except Exception as exc:  # an unloadable champion must not crash the pipeline
                champion_scores = GateScores(float("inf"), float("nan"), version=champion_version)
                challenger_note = f"champion v{champion_version} could not be re-scored ({exc})"
                client.set_model_version_tag(
                    model_name, version, "promotion.note", challenger_note[:_TAG_LIMIT]
                )
            champion_scores.version = champion_version
        decision = promote_if_better(
            client, model_name, version, gate, challenger, champion_scores,
            force=force, requested_by=requested_by, reason=reason, lock_timeout_s=lock_timeout_s,
        )  # fmt: skip
        if decision.decision != "stale":
            break

    report.gate = decision.to_dict() if decision else {}
    facts = ModelFacts(
        model_name, list(model.streams), list(spec.labels.classes), spec.name,
        tags.get("dataset_version"),
    )  # fmt: skip
    card = card_at_registration(
        client, model_name=model_name, version=version, spec=spec, report=report,
        version_tags=str_tags, run_id=run_id, test_meta=test_samples_for_rescoring.meta,
        window_s=float(model.window_s), gate_min_macro_f1=gate.min_macro_f1,
    )  # fmt: skip
    log_card(client, run_id, card)
    describe_version(
        client, facts, version, report, decision, tags.get("pipeline_run_id"), card, run_id
    )
    if own_run:
        client.log_text(run_id, report.to_json(), "evaluation/report.json")
    client.log_dict(run_id, report.gate, "registration/gate.json")
    client.set_tag(run_id, "promotion.decision", decision.decision if decision else "none")
    if own_run:
        client.set_terminated(run_id, status="FINISHED")
    aliases = [CHALLENGER] + ([CHAMPION] if decision and decision.promoted else [])
    return RegistrationResult(
        run_id=run_id,
        model_version=version,
        aliases=aliases,
        promoted=bool(decision and decision.promoted),
        reasons=list(decision.reasons) if decision else [],
        decision=decision,
        model_uri=model_uri or "",
        model_name=model_name,
    )


# ---- idempotent registration -----------------------------------------------------------------

LOGGED_MODEL_TAG = "modalops.logged_model"


def find_registered_version(client, model_name: str, fingerprint: str) -> Any | None:
    """The oldest READY version of `model_name` tagged with `fingerprint`, or None (the search
    finds none: MLflow answers an empty list for a model not registered yet). A failed search
    raises RegistryReadError: taken as "none", it registered a second version."""
    name = model_name.replace("'", "\\'")
    with registry_read(
        client,
        f"the versions of model {model_name} tagged {FINGERPRINT_TAG}={fingerprint}",
        "deciding whether this model is already registered",
    ):
        found = client.search_model_versions(
            f"name = '{name}' and tags.`{FINGERPRINT_TAG}` = '{fingerprint}'"
        )
    ready = [v for v in found if v.status == "READY"]
    return min(ready, key=lambda v: int(v.version)) if ready else None


def registration_of(client, model_name: str, mv: Any) -> RegistrationResult | None:
    """The RegistrationResult of an existing version whose gate already ran (None: it has not;
    the caller finishes the job). Aliases are left as they are: no second challenger. A
    champion missing its final `promotion.decision` tag (a crash just before it) gets it."""
    mv = client.get_model_version(model_name, str(mv.version))  # search leaves out aliases
    tags = dict(mv.tags or {})
    recorded = tags.get("promotion.decision")
    version = str(mv.version)
    champion = current_champion(
        client, model_name, f"deciding whether v{version} finished its registration"
    )
    if recorded is None and champion != version:
        return None
    if recorded is None:  # champion already: the attempt stopped just before its last write
        client.set_model_version_tag(model_name, version, "promotion.decision", "promoted")
    promoted = champion == version
    reasons = [
        f"v{version} already registered with the same fingerprint "
        f"(dataset version, fused checkpoint, config): reused, nothing registered",
        *[r for r in tags.get("promotion.reasons", "").split("\n") if r],
    ]
    decision = PromotionDecision(
        model_name,
        version,
        promoted,
        recorded or "promoted",
        reasons,
        previous_champion=tags.get("promotion.compared_to"),
        decided_at=tags.get("promotion.decided_at", ""),
    )
    aliases = sorted(getattr(mv, "aliases", None) or [], key=lambda a: a != CHALLENGER)
    return RegistrationResult(
        run_id=mv.run_id,
        model_version=version,
        aliases=list(aliases),
        promoted=promoted,
        reasons=reasons,
        decision=decision,
        model_uri=mv.source,
        model_name=model_name,
        reused=True,
    )


def _logged_model_uri(client, run_id: str, fingerprint: str | None) -> str | None:
    """The model an earlier attempt logged in `run_id` for `fingerprint`, if any."""
    if not fingerprint:
        return None
    raw = client.get_run(run_id).data.tags.get(LOGGED_MODEL_TAG)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc.get("model_uri") if doc.get("fingerprint") == fingerprint else None


def model_id_of(model_uri: str) -> str | None:
    """The `m-...` id in a logged model's `models:/<id>` URI, None for any other source. A
    tracking server refuses such a source without it ("The model_id request parameter must
    identify the resource that contains the source"); SQLite accepted it."""
    rest = model_uri[len("models:/") :] if model_uri.startswith("models:/") else ""
    return rest if rest and "/" not in rest else None


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, str(value))


def _log_dataset_input(client, run_id: str, dataset: Any, context: str = "training") -> None:
    """`dataset` (an mlflow Dataset) as an input of `run_id`, shown in the run's Datasets panel."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    entity = dataset._to_mlflow_entity()
    client.log_inputs(
        run_id, datasets=[DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, context)])]
    )


def _load_for_registration(checkpoint_path: Path, loader_ref: str) -> Any:
    """The classifier in a checkpoint, for its spec, streams and window (what the pyfunc loads)."""
    from modalops.serving.pyfunc import load_served_model

    model = load_served_model(checkpoint_path, loader_ref)
    missing = [a for a in ("spec", "streams", "window_s") if getattr(model, a, None) is None]
    if missing:
        raise ValueError(
            f"checkpoint {checkpoint_path}: the model carries no {missing}; it cannot be served "
            "without the dataset spec it was trained on"
        )
    return model


def dataset_input_of(manifest: Any, spec: Any) -> Any:
    """The dataset version as an MLflow input, for the runs' Datasets panel: name
    `<spec name>@<version>`, source = the version's folder, digest = the spec's, schema = the
    served model's input columns, profile = the spec (dataset.yaml text) and the split sizes.

    Returns None where MLflow cannot describe the source (the run is logged without it).
    """
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    uri = f"{manifest.store_uri.rstrip('/')}/{manifest.prefix}"
    if "://" not in uri:
        uri = Path(uri).resolve().as_uri()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": either is fine
            source = resolve_dataset_source(uri)
    except Exception:  # MLflow raises its own types for unknown schemes
        return None
    splits = getattr(manifest, "splits", None) or {}
    profile = {
        "version": manifest.version,
        "spec_digest": manifest.spec_digest,
        "splits": {k: int(getattr(v, "n_samples", 0)) for k, v in splits.items()},
        # counts only, never ids (the model card's Data section)
        "sessions": {k: len(getattr(v, "sessions", None) or []) for k, v in splits.items()},
        "dataset.yaml": spec.to_yaml(),
    }
    try:
        from modalops.serving.signature import model_signature

        schema = model_signature(spec).inputs
    except Exception:  # a spec the signature cannot describe still gets its input logged
        schema = None

    class SpecDataset(MetaDataset):
        """A MetaDataset whose profile carries the spec (MetaDataset has no profile)."""

        @property
        def profile(self) -> Any:
            return profile

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(profile)}

    # MLflow caps dataset digests at 36 characters
    return SpecDataset(
        source=source,
        name=f"{spec.name}@{manifest.version}",
        digest=manifest.spec_digest[:36],
        schema=schema,
    )


def _registered(client, name: str, deciding: str) -> bool:
    """Whether registered model `name` exists; a failed read raises RegistryReadError."""
    return _registered_model(client, name, f"registered model {name}", deciding) is not None


def _create_registered(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # else: another pipeline created it
            raise
    return name


def _wait_ready(client, name: str, version: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION":
            raise RuntimeError(f"model {name} v{version}: registration failed")
        time.sleep(0.2)
    raise TimeoutError(f"model {name} v{version}: not READY after {timeout_s:.0f} s")


# ---- what the registry shows about a version --------------------------------------------------------


def run_dataset(client, run_id: str) -> tuple[str, str] | None:
    """(name, digest) of the dataset the run logged as its training input, if any."""
    for item in client.get_run(run_id).inputs.dataset_inputs or []:
        contexts = {t.value for t in item.tags if t.key == "mlflow.data.context"}
        if not contexts or "training" in contexts:
            return item.dataset.name, item.dataset.digest
    return None


def log_model_metrics(client, run_id: str, model_id: str | None, report: Any, step: int) -> None:
    """The fused model's test figures (`eval.` names, `MODEL_HEADLINE`) on the run and on its
    logged model, each tied to the dataset the run trained on: the logged-model page lists that
    dataset under "Datasets used" only through metrics that name it."""
    from mlflow.entities import Metric

    from modalops.evaluate import headline_metrics

    wanted = {f"eval.{k}" for k in MODEL_HEADLINE}
    values = {k: v for k, v in headline_metrics(report).items() if k in wanted}
    dataset = run_dataset(client, run_id)
    name, digest = dataset if dataset else (None, None)
    now = int(time.time() * 1000)
    items = [
        Metric(k, v, now, step, model_id=model_id, dataset_name=name, dataset_digest=digest)
        for k, v in values.items()
    ]
    if items:
        client.log_batch(run_id, metrics=items)


def link_logged_model(client, model_name: str, version: str, model_id: str | None) -> None:
    """Record `version` on the logged model it was registered from (tag `mlflow.modelVersions`,
    read by the logged-model page's "Registered" and "Model versions"). A tracking server does
    this itself on create_model_version; a database store does not. Idempotent."""
    if not model_id:
        return
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    entry = {"name": model_name, "version": str(version)}
    raw = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    known = json.loads(raw) if raw else []
    if entry not in [{"name": k.get("name"), "version": str(k.get("version"))} for k in known]:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*known, entry])})


def describe_version(
    client,
    facts: ModelFacts,
    version: str,
    report: Any,
    decision: PromotionDecision | None,
    pipeline_run: str | None = None,
    card: ModelCard | None = None,
    run_id: str | None = None,
) -> None:
    """The version's description (its model card, or what it is, test figures, the gate's
    decision and the known limitations, pointing to the card) and the registered model's
    (what its versions are, which alias serves)."""
    text = version_description(facts, report.headline, decision, pipeline_run)
    if card is not None:
        pointer = (
            f"Full model card: artifact `{CARD_MD}` of run `{run_id}` "
            f"(`modalops card {facts.model_name}/{version}`)."
        )
        text = description_of(card, text, pointer)
    # MLflow's column is VARCHAR(5000): PostgreSQL refuses a longer description
    client.update_model_version(facts.model_name, version, description=text[:DESCRIPTION_LIMIT])
    client.update_registered_model(facts.model_name, description=model_description(facts))


# ---- the pipeline's register stage ---------------------------------------------------------------


def experiment_artifact_location(registry_uri: str | None, store_uri: str) -> str:
    """Artifacts next to everything else the pipeline writes: `<store>/mlflow` unless configured."""
    if registry_uri:
        return registry_uri
    if store_uri.startswith("s3://"):
        return store_uri.rstrip("/") + "/mlflow"
    return (Path(store_uri).resolve() / "mlflow").as_uri()


def register_pipeline_model(
    run,
    cfg,
    manifest,
    trained,
    report,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> RegistrationResult:
    """The register stage: log the fused checkpoint as a pyfunc, register it, gate `champion`.

    `run` is a runs.RunContext, `cfg` the PipelineConfig. `run_id` is the fused model's child
    run (register.tracking): the model is logged there and the version links to it; None logs
    into a new run. `tags` are added to the version's (e.g. `reviewed_labels`). The evaluation
    report is written back to the store afterwards so it carries the gate's decision.
    """
    from modalops.evaluate import FUSED_ID, write_report

    store = run.store()
    fused = next((t for t in trained if t.model_id == FUSED_ID), None)
    if fused is None:
        raise ValueError("no fused model among the trained models: nothing to register")
    if cfg.store.endpoint_url and not os.environ.get("MLFLOW_S3_ENDPOINT_URL"):
        # MLflow's S3 artifact repository reads its endpoint from this variable only
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = cfg.store.endpoint_url
    tracking_uri = absolute_tracking_uri(cfg.registry.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="modalops-artifacts-") as tmp:
        checkpoint = store.get_file(fused.checkpoint_key, Path(tmp) / "model.pt")
        # the model, not the file's bytes: those carry the training's wall-clock (fingerprint.py)
        fingerprint = registration_fingerprint(
            manifest.version, model_digest(checkpoint), cfg.model_dump(mode="json")
        )
        result = _reuse_registration(tracking_uri, cfg.registry.model_name, fingerprint)
        if result is None:
            step = max(int(fused.metrics.get("best_epoch", 0)), 0)
            result = _register_new(
                run,
                cfg,
                manifest,
                report,
                run_id,
                tags,
                tracking_uri,
                checkpoint,
                fingerprint,
                step,
            )
    if result.reused:
        report.gate = result.decision.to_dict() if result.decision else {}
    write_report(store, run.key("evaluation"), report)  # now with the gate's decision
    result.model_name = cfg.registry.model_name
    return result


def _reuse_registration(tracking_uri: str, model_name: str, fingerprint: str):
    """The finished registration of `fingerprint`, checked before any test sample is read."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    existing = find_registered_version(client, model_name, fingerprint)
    return None if existing is None else registration_of(client, model_name, existing)


def _register_new(
    run, cfg, manifest, report, run_id, tags, tracking_uri, checkpoint, fingerprint, model_step
) -> RegistrationResult:
    from modalops.evaluate import evaluation_slices
    from modalops.shard import iter_raw_samples

    store = run.store()
    spec = manifest.dataset_spec()
    # re-read per scoring pass, one batch at a time: memory does not grow with the test split
    rescoring = RescoringSet.from_source(
        functools.partial(iter_raw_samples, store, manifest, "test"),
        spec,
        evaluation_slices(spec, cfg.evaluate),
        cfg.evaluate.ece_bins,
    )
    version_tags = {
        "dataset_version": manifest.version,
        "prefect_flow_run_id": run.flow_run_id,
        "pipeline": cfg.name,
        "align_mode": cfg.align.mode,
        "modalops.run_key": run.run_key,
        **dict(tags or {}),
    }
    return log_and_register(
        tracking_uri,
        cfg.registry.experiment,
        cfg.registry.model_name,
        checkpoint,
        report,
        cfg.model_dump(mode="json"),
        version_tags,
        {},
        rescoring,
        gate=cfg.registry.gate_for(cfg.registry.model_name),
        force=cfg.registry.force,
        requested_by=cfg.registry.requested_by,
        reason=cfg.registry.force_reason,
        artifact_location=experiment_artifact_location(
            cfg.registry.artifact_location, cfg.store.uri
        ),
        lock_timeout_s=cfg.registry.lock_timeout_s,
        dataset_spec=spec,
        # the child run got the dataset input when it started training
        dataset_input=dataset_input_of(manifest, spec) if run_id is None else None,
        run_id=run_id,
        model_step=model_step,
        fingerprint=fingerprint,
    )


def absolute_tracking_uri(uri: str) -> str:
    """`uri` with a relative SQLite or plain-path store made absolute (same store from any cwd,
    e.g. a training subprocess started in its work directory)."""
    db = _sqlite_path(uri)
    if db is not None:
        return f"sqlite:///{db}"
    if "://" not in uri and not uri.startswith(("databricks", "file:")):
        return Path(uri).expanduser().resolve().as_uri()
    return uri
