"""Registry reads that fail are errors, never "nothing there"; two identical pipelines at once
register one version (issue 23).

Real MLflow on one SQLite database for the module (each test its own model name). The one
injected fault: an MlflowClient read raising an MlflowException whose code is not "not found",
as a locked database or a server error does.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modalops.config.evaluate import PromotionGateConfig
from modalops.register import GateScores, log_and_register, promote_if_better
from modalops.register.fingerprint import model_digest, registration_fingerprint
from modalops.register.registry import (
    CHAMPION,
    FINGERPRINT_TAG,
    RegistryReadError,
    current_champion,
    find_registered_version,
    register_pipeline_model,
    tracking_errors,
)
from modalops.testing.models import save_tiny, tiny_classifier
from modalops.testing.models import tiny_report as make_report
from tests.conftest import REPO
from tests.test_registry_faults import tiny_model_in

LOCKED = "(sqlite3.OperationalError) database is locked"
GATE = PromotionGateConfig(min_macro_f1=0.0)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    """One SQLite MLflow database for the module (creating one costs seconds of migrations)."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry-reads')}/mlflow.db"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_in(tmp_path_factory.mktemp("tiny-model"))


class Outage:
    """The next `calls` calls of the given MlflowClient read methods raise an MlflowException
    whose code is not "not found" (a locked database); `start(n)` begins one."""

    def __init__(self, monkeypatch, *methods: str):
        self.left = 0
        self.failed: list[tuple] = []
        for method in methods:
            monkeypatch.setattr(MlflowClient, method, self._failing(getattr(MlflowClient, method)))

    def start(self, calls: int) -> None:
        self.left = calls

    def _failing(self, real):
        def failing(client, *args, **kwargs):
            if self.left > 0:
                self.left -= 1
                self.failed.append(args)
                raise MlflowException(LOCKED)  # error code INTERNAL_ERROR
            return real(client, *args, **kwargs)

        return failing


def champion_v1(uri: str, name: str, fingerprint: str) -> MlflowClient:
    """`name` v1, registered with `fingerprint`, its gate done, alias champion (no model logged:
    a champion that cannot be loaded scores as the worst, so nothing beats it by accident)."""
    client = MlflowClient(uri)
    client.create_registered_model(name)
    tags = {FINGERPRINT_TAG: fingerprint, "promotion.decision": "promoted"}
    client.create_model_version(name, source=str(Path(uri[len("sqlite:///") :]).parent), tags=tags)
    client.set_registered_model_alias(name, CHAMPION, "1")
    return client


def register(uri, tiny_model, name: str, fingerprint: str):
    spec, checkpoint, rescoring = tiny_model
    return log_and_register(
        tracking_uri=uri, experiment=name, model_name=name, checkpoint_path=checkpoint,
        report=make_report(), config_dict={}, tags={}, artifacts={},
        test_samples_for_rescoring=rescoring, gate=GATE, dataset_spec=spec,
        fingerprint=fingerprint,
    )  # fmt: skip


def versions(client: MlflowClient, name: str) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def outcome(call) -> BaseException | None:
    """What `call()` raised (None: nothing); the registry's state is asserted before the error."""
    try:
        call()
    except Exception as exc:
        return exc
    return None


def test_a_failed_fingerprint_search_registers_no_second_version(registry, tiny_model, monkeypatch):
    """A re-run of v1's registration while the fingerprint search fails: before, the failure
    read as "not registered" and v2 was created beside v1."""
    fp = registration_fingerprint("v1", "a" * 64, {})
    client = champion_v1(registry, "reads-search", fp)
    outage = Outage(monkeypatch, "search_model_versions")
    outage.start(1000)  # every search, for as long as the registration runs
    error = outcome(lambda: register(registry, tiny_model, "reads-search", fp))
    monkeypatch.undo()
    assert versions(client, "reads-search") == ["1"]
    assert current_champion(client, "reads-search") == "1"
    assert isinstance(error, RegistryReadError) and outage.failed
    assert str(error).startswith(
        f"could not read the versions of model reads-search tagged {FINGERPRINT_TAG}={fp} at "
        f"{registry} while deciding whether this model is already registered (INTERNAL_ERROR: "
        f"{LOCKED})"
    )


def test_a_failed_registered_model_check_creates_no_version(registry, tiny_model, monkeypatch):
    """A new model (another fingerprint) whose one check for the registered model fails: before,
    the failure read as "no registered model" and the version was created regardless."""
    client = champion_v1(registry, "reads-model", registration_fingerprint("v1", "a" * 64, {}))
    outage = Outage(monkeypatch, "get_registered_model")
    outage.start(1)
    fp = registration_fingerprint("v2", "b" * 64, {})
    error = outcome(lambda: register(registry, tiny_model, "reads-model", fp))
    monkeypatch.undo()
    assert versions(client, "reads-model") == ["1"]
    assert outage.failed == [("reads-model",)]
    assert isinstance(error, RegistryReadError)
    assert "read registered model reads-model" in str(error)
    assert "while creating a version of reads-model" in str(error)


def test_a_failed_champion_read_promotes_nothing(registry, tiny_model, monkeypatch):
    """Once the new version is scored, the next two reads of the champion fail (a short
    outage): before, both read as "no champion yet" (the read that chooses what to re-score,
    then the one under the promotion lock) and v2 became champion without being compared."""
    import modalops.register.registry as registry_module

    client = champion_v1(registry, "reads-champion", registration_fingerprint("v1", "a" * 64, {}))
    outage = Outage(monkeypatch, "get_registered_model", "get_model_version_by_alias")
    real_score = registry_module.score_model_uri
    scored: list[str] = []

    def score(model_uri, data):  # MLflow's loading reads the registered model: outage after it
        scores = real_score(model_uri, data)
        scored.append(model_uri)
        outage.start(2)
        return scores

    monkeypatch.setattr(registry_module, "score_model_uri", score)
    fp = registration_fingerprint("v2", "b" * 64, {})
    error = outcome(lambda: register(registry, tiny_model, "reads-champion", fp))
    monkeypatch.undo()
    assert scored == ["models:/reads-champion/2"]
    assert current_champion(client, "reads-champion") == "1"
    assert "promotion.decision" not in client.get_model_version("reads-champion", "2").tags
    assert isinstance(error, RegistryReadError)
    assert str(error).startswith(
        f"could not read the champion of model reads-champion at {registry} while choosing the "
        "champion to re-score against v2"
    )


def test_a_failed_champion_read_under_the_lock_promotes_no_worse_model(registry, monkeypatch):
    """promote_if_better's own read: a model far worse than champion v1, scored as if there
    were no champion, must not take the "first registration" branch when that read fails."""
    client = champion_v1(registry, "reads-gate", registration_fingerprint("v1", "a" * 64, {}))
    client.create_model_version(
        "reads-gate", source=str(Path(registry[len("sqlite:///") :]).parent)
    )
    outage = Outage(monkeypatch, "get_registered_model", "get_model_version_by_alias")
    outage.start(1)
    worse = GateScores(0.1, 0.5, n=10)
    error = outcome(lambda: promote_if_better(client, "reads-gate", "2", GATE, worse, None))
    monkeypatch.undo()
    assert current_champion(client, "reads-gate") == "1"
    assert "promotion.decision" not in client.get_model_version("reads-gate", "2").tags
    assert isinstance(error, RegistryReadError)
    assert "while deciding whether v2 becomes champion" in str(error)


def test_absent_means_what_mlflow_answers_absent(registry):
    """No registered model, or no champion alias yet: None, not an error."""
    client = MlflowClient(registry)
    assert current_champion(client, "reads-never-registered") is None
    client.create_registered_model("reads-no-alias")
    assert current_champion(client, "reads-no-alias") is None
    assert find_registered_version(client, "reads-never-registered", "f" * 32) is None


def test_a_failed_read_names_the_uri_without_its_password(monkeypatch):
    """The password in the tracking URI is masked, in the URI and in MLflow's own message; an
    unreachable server is still the one TrackingUnavailableError."""
    from modalops.register.registry import TrackingUnavailableError
    from modalops.services import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://ops:s3cr3t-pw@127.0.0.1:{free_port()}"  # nothing listens there
    client = MlflowClient(uri)
    with pytest.raises(RegistryReadError) as err:
        current_champion(client, "m")
    text = str(err.value)
    assert "s3cr3t-pw" not in text and "http://ops:***@127.0.0.1" in text
    assert "could not read the champion of model m at http://ops:***@127.0.0.1" in text
    assert "while reading the champion (" in text and "Connection refused" in text
    unreachable = pytest.raises(TrackingUnavailableError, match="Connection refused")
    with unreachable, tracking_errors(uri, "registration"):
        find_registered_version(client, "m", "f" * 32)


# ---- two identical pipelines at once ---------------------------------------------------------


def test_two_identical_pipelines_at_once_register_one_version(tmp_path, registry, monkeypatch):
    """Two pipelines, same input and config, started together: each trains the same weights,
    but its checkpoint file records its own wall-clock (`meta.metrics.seconds`), so the bytes
    differ. Both register at once (two threads, a barrier) through the pipeline's register
    stage: one version, one champion. Before, the fingerprint hashed the file's bytes: v1 and v2.
    """
    from modalops.config import load_config
    from modalops.runs import new_run
    from modalops.store import open_store
    from modalops.testing.shards import other_spec as shard_spec
    from modalops.testing.shards import write_test_shards
    from modalops.train import FUSED_ID
    from modalops.train.training import TrainResult

    cfg = load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={tmp_path / 'store'}",
            f"registry.tracking_uri={registry}",
            "registry.model_name=reads-concurrent",
            "registry.experiment=reads-concurrent",
            "registry.gate.min_macro_f1=0.0",
        ],
    )
    store = open_store(cfg.store.uri)
    spec = shard_spec()
    manifest = write_test_shards(store, spec, n_sessions=6, windows=4, samples_per_shard=8)
    model = tiny_classifier(spec)
    trained = []
    for i, seconds in enumerate((7.77, 9.37)):  # what the two trainings measured
        path = save_tiny(model, tmp_path / f"model-{i}.pt", {"metrics": {"seconds": seconds}})
        key = f"{manifest.prefix}/models/fused/key/model-{i}.pt"
        store.put_file(key, path)
        trained.append(TrainResult(FUSED_ID, spec.stream_names, key, {"best_epoch": 0.0}, None))
    assert (tmp_path / "model-0.pt").read_bytes() != (tmp_path / "model-1.pt").read_bytes()
    assert model_digest(tmp_path / "model-0.pt") == model_digest(tmp_path / "model-1.pt")

    client = MlflowClient(registry)
    experiment = client.create_experiment("reads-concurrent", (tmp_path / "mlartifacts").as_uri())
    children = [client.create_run(experiment).info.run_id for _ in trained]
    for child in children:  # each pipeline's fused child run, ended when training ended
        client.set_terminated(child)
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def pipeline(i: int) -> None:
        report = make_report()
        report.plots = {"models": b""}  # rendered by the evaluate stage, not this test
        barrier.wait()
        try:
            results[i] = register_pipeline_model(
                new_run(cfg.store), cfg, manifest, [trained[i]], report, run_id=children[i]
            )
        except Exception as exc:  # reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=pipeline, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    assert versions(client, "reads-concurrent") == ["1"]
    assert sorted(r.model_version for r in results.values()) == ["1", "1"]
    assert current_champion(client, "reads-concurrent") == "1"


def test_the_planner_and_batch_inference_read_the_champion_or_fail(registry, monkeypatch):
    """Two more readers of the champion: the planner's "which sessions are new" and batch
    inference's model choice. Absent is None / ModelNotFound; a failed read is an error (before:
    None, i.e. every session "new", and "no such model" for a locked database)."""
    from modalops.infer.champion import ModelNotFound, load_registered
    from modalops.pipeline_plan import champion_dataset_version

    name = "reads-planner"
    assert champion_dataset_version(registry, name) is None  # no model yet
    with pytest.raises(ModelNotFound, match="has no alias 'champion'"):
        load_registered(registry, name)
    client = champion_v1(registry, name, "fp-planner")
    client.set_model_version_tag(name, "1", "dataset_version", "ds-1")
    assert champion_dataset_version(registry, name) == "ds-1"
    with pytest.raises(ModelNotFound, match="has no alias 'staging'"):
        load_registered(registry, name, alias="staging")
    outage = Outage(monkeypatch, "get_registered_model", "get_model_version")
    for read in (
        lambda: champion_dataset_version(registry, name),
        lambda: load_registered(registry, name),
    ):
        outage.start(1)
        with pytest.raises(RegistryReadError, match="database is locked"):
            read()
