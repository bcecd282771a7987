"""Registration under faults: a crash at an exact point of `log_and_register`, then the retry;
an MLflow tracking server (a real `mlflow server` subprocess on SQLite) that is down at flow
start, down at registration for good, or down and back within the register task's retries.

The crash is the one injected fault (an MlflowClient method raising once, where a process could
die); everything else is real MLflow. docs/faults.md describes each case and its recovery.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modalops.config.evaluate import PromotionGateConfig
from modalops.register import RescoringSet, current_champion, log_and_register
from modalops.register.registry import (
    FINGERPRINT_TAG,
    HTTP_RETRY_BOUNDS,
    TrackingUnavailableError,
    registration_fingerprint,
    tracking_errors,
)
from modalops.services import free_port, start_mlflow_server
from modalops.testing.models import make_samples, other_spec, save_tiny, tiny_classifier
from modalops.testing.models import tiny_report as make_report
from tests.conftest import REPO

GATE = PromotionGateConfig(min_macro_f1=0.0)  # the untrained tiny model passes: it becomes champion


class InjectedCrash(RuntimeError):
    """What the process 'dies' of at the injection point."""


def inject_once(monkeypatch, method: str, when, after: bool = False) -> list[tuple]:
    """MlflowClient.<method> raises InjectedCrash once, at the first call where `when(*args)`
    holds: before the call reaches MLflow, or (`after`) once it has (the reply lost)."""
    real = getattr(MlflowClient, method)
    fired: list[tuple] = []

    def faulty(self, *args, **kwargs):
        if not fired and when(*args, **kwargs):
            fired.append(args)
            if after:
                real(self, *args, **kwargs)
            raise InjectedCrash(f"injected crash at {method}{args[:3]}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, faulty)
    return fired


CRASH_POINTS = {
    # model logged and tagged on its run; no version yet
    "before_create_version": ("create_model_version", lambda *a, **k: True, False),
    # the version exists (tagged with the fingerprint), the reply never came back
    "version_created_reply_lost": ("create_model_version", lambda *a, **k: True, True),
    "before_challenger_alias": ("set_registered_model_alias", lambda n, alias, v: alias == "challenger", False),  # noqa: E501
    # the gate's reasons recorded on the version, `champion` not moved yet
    "gate_recorded_before_champion": ("set_registered_model_alias", lambda n, alias, v: alias == "champion", False),  # noqa: E501
    # champion moved; the last write (promotion.decision) not done
    "champion_set_before_decision_tag": ("set_model_version_tag", lambda n, v, key, value: key == "promotion.decision", False),  # noqa: E501
}  # fmt: skip


def tiny_model_in(root: Path):
    """A width-4 checkpoint of a non-demo spec in `root` and its rescoring set (6 samples)."""
    spec = other_spec()
    checkpoint = save_tiny(tiny_classifier(spec), root / "model.pt")
    return spec, checkpoint, RescoringSet.from_raw_samples(make_samples(spec, 6), spec)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_in(tmp_path_factory.mktemp("tiny-model"))


def register(uri: str, tiny_model, run_id: str | None = None):
    spec, checkpoint, rescoring = tiny_model
    return log_and_register(
        tracking_uri=uri, experiment="faults", model_name="m", checkpoint_path=checkpoint,
        report=make_report(), config_dict={"seed": 1}, tags={"dataset_version": "v1"},
        artifacts={}, test_samples_for_rescoring=rescoring, gate=GATE, dataset_spec=spec,
        run_id=run_id, fingerprint=registration_fingerprint("v1", "0" * 64, {"seed": 1}),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("point", "own_run"),
    [(p, True) for p in CRASH_POINTS] + [("gate_recorded_before_champion", False)],
)
def test_a_crash_mid_registration_then_the_retry_leaves_one_version_one_champion(
    tmp_path, monkeypatch, tiny_model, point, own_run
):
    """The first attempt dies at `point`; the retry (same inputs, as the task's retry calls it)
    ends with one version, aliases challenger + champion, one run, one logged model."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = None
    if not own_run:  # the pipeline's case: the model goes into the fused child run
        run_id = client.create_run(
            client.create_experiment("faults", (tmp_path / "mlartifacts").as_uri())
        ).info.run_id
        client.set_terminated(run_id)
    method, when, after = CRASH_POINTS[point]
    fired = inject_once(monkeypatch, method, when, after)
    with pytest.raises(InjectedCrash):
        register(uri, tiny_model, run_id)
    assert fired, f"the crash at {point} never fired"

    result = register(uri, tiny_model, run_id)

    versions = client.search_model_versions("name = 'm'")
    assert [str(v.version) for v in versions] == ["1"]
    mv = client.get_model_version("m", "1")
    assert set(mv.aliases) == {"challenger", "champion"}
    assert current_champion(client, "m") == "1"
    assert mv.tags["promotion.decision"] == "promoted" and FINGERPRINT_TAG in mv.tags
    assert result.model_version == "1" and result.promoted
    experiment = client.get_experiment_by_name("faults").experiment_id
    runs = client.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [result.run_id]  # no orphan second run
    if run_id is not None:
        assert result.run_id == run_id and runs[0].info.status == "FINISHED"
    assert len(client.search_logged_models([experiment])) == 1  # the retry reused the model
    # a third call (a re-run) registers nothing and keeps the champion
    again = register(uri, tiny_model, run_id)
    assert again.reused and again.model_version == "1" and again.promoted
    assert len(client.search_model_versions("name = 'm'")) == 1


# ---- the tracking server ---------------------------------------------------------------------


def test_an_unreachable_server_is_one_error_naming_the_uri_without_its_password(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://ops:s3cr3t-pw@127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TrackingUnavailableError) as err, tracking_errors(uri, "registration"):
        MlflowClient(uri).get_experiment_by_name("x")
    text = str(err.value)
    assert f"MLflow tracking server http://ops:***@127.0.0.1:{uri.rsplit(':', 1)[1]}" in text
    assert "during registration (/api/2.0/mlflow/experiments/get-by-name: [Errno 111]" in text
    assert "Connection refused" in text and "re-run the flow" in text
    assert "s3cr3t-pw" not in text and err.value.__cause__ is None
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES=0" in text


def test_other_mlflow_errors_pass_through(tmp_path):
    from mlflow.exceptions import MlflowException

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(MlflowException) as err, tracking_errors("sqlite:///x.db", "registration"):
        client.get_registered_model("absent")
    assert not isinstance(err.value, TrackingUnavailableError)


def pipeline_config(
    root: Path, tracking_uri: str, model_name: str = "faults-server", store: str = "store"
):
    from modalops.config import load_config

    return load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={root / store}",
            f"ingest.raw_uri={root / 'raw'}",
            f"registry.tracking_uri={tracking_uri}",
            f"registry.model_name={model_name}",
            "train.max_epochs=2",
            "train.baselines=false",  # the fused model alone: the registered one
        ],
    )


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory) -> Path:
    from modalops.store import open_store
    from modalops_demo.generate import DemoDataConfig, generate_demo_data

    root = tmp_path_factory.mktemp("faults-server")
    generate_demo_data(
        open_store(str(root / "raw")), DemoDataConfig(sessions=8, duration_s=30.0, seed=5)
    )
    return root


def test_server_down_at_flow_start_fails_before_any_stage(demo_raw, prefect_api, monkeypatch):
    """Nothing runs without the parent run: the flow fails in start_tracking with
    TrackingUnavailableError naming the server's URL and the cause; no dataset, no model."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline
    from modalops.store import open_store

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    cfg = pipeline_config(demo_raw, url, store="store-start")
    with temporary_settings({PREFECT_API_URL: prefect_api}), pytest.raises(Exception) as err:
        training_pipeline(cfg)
    assert url in str(err.value) and "Connection refused" in str(err.value)
    assert "did not answer during flow start" in str(err.value)
    store = open_store(cfg.store.uri)
    assert not [k for k in store.list() if k.startswith("datasets/")]


class TcpGate:
    """127.0.0.1:<port> forwarded to a server's port. `close()` makes the server unreachable as
    a dead one is (connection refused; open connections cut); `open()` listens again on the same
    port. The server process itself keeps running, so the outage ends exactly when told to."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self.open()

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module")
def mlflow_server(demo_raw):
    server = start_mlflow_server(
        f"sqlite:///{demo_raw / 'server' / 'mlflow.db'}", demo_raw / "server"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_server_down_at_registration_fails_clearly_and_back_in_time_registers_once(
    demo_raw, mlflow_server, prefect_api, monkeypatch
):
    """A: the server becomes unreachable once evaluation is done and stays so: the register
    task's three attempts fail, the flow fails with TrackingUnavailableError naming the URI,
    nothing is registered. Then B and the recovery in one run: the flow re-run, the server
    unreachable for its first register attempt and back for the task's retry: training is a
    cache hit, the flow finishes with one version and a champion. The outage follows the
    attempts, not a clock (benchmarks/faults.py stops and restarts the server process)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.training_pipeline as pipeline
    import tasks.register
    from tasks.evaluate import evaluate_classifiers
    from tasks.register import register_model

    gate = TcpGate(int(mlflow_server.url.rsplit(":", 1)[1]))
    client = MlflowClient(mlflow_server.url)
    attempts: list[int] = []
    reopen_at: list[int] = []  # the register attempt at which the server is back; [] = never
    real_version_tags = tasks.register.version_tags

    def counted(tracking):  # the first MLflow call of each register attempt
        attempts.append(len(attempts) + 1)
        if attempts[-1] in reopen_at:
            gate.open()
        return real_version_tags(tracking)

    def close_gate(task, task_run, state) -> None:
        gate.close()

    monkeypatch.setattr(tasks.register, "version_tags", counted)
    monkeypatch.setattr(
        pipeline,
        "evaluate_classifiers",
        evaluate_classifiers.with_options(on_completion=[close_gate]),
    )
    # MLflow's own retries cut to one, without backoff: each attempt meets the outage within
    # milliseconds (the pipeline's bounds are measured in benchmarks/faults.py). Not zero: a
    # pooled keep-alive connection the server closes just as a request goes out (uvicorn's 5 s
    # idle timeout, widened by the gate's relay threads) is answered by nothing, and with no
    # retry that failed a log-batch call outside registration in CI (stop 16).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    try:
        with temporary_settings({PREFECT_API_URL: prefect_api}):
            # ---- A: unreachable for good (the task's delays shortened, its retries as they are)
            cfg = pipeline_config(demo_raw, gate.url)
            monkeypatch.setattr(
                pipeline, "register_model", register_model.with_options(retry_delay_seconds=1)
            )
            with pytest.raises(TrackingUnavailableError) as err:
                pipeline.training_pipeline(cfg)
            assert str(err.value).startswith(
                f"MLflow tracking server {gate.url} did not answer during registration"
            )
            assert len(attempts) == 3  # retries=2 on the task
            assert client.search_model_versions(f"name = '{cfg.registry.model_name}'") == []
            experiment = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
            assert len(client.search_runs([experiment])) == 2  # parent + fused child, no more

            # ---- B + recovery: the server back, the same flow again (the task as declared);
            # down again for its first register attempt, back for the retry ----------------
            gate.open()
            monkeypatch.setattr(pipeline, "register_model", register_model)
            attempts.clear()
            reopen_at.append(2)
            rerun = pipeline.training_pipeline(cfg)
            assert attempts == [1, 2]
            versions = client.search_model_versions(f"name = '{cfg.registry.model_name}'")
            assert [str(v.version) for v in versions] == ["1"] == [str(rerun["model_version"])]
            assert current_champion(client, cfg.registry.model_name) == "1"
            children = client.search_runs(
                [experiment], f"tags.`mlflow.parentRunId` = '{rerun['mlflow_parent_run_id']}'"
            )
            assert [c.data.tags.get("modalops.cache_hit") for c in children] == ["true"]
    finally:
        gate.close()


def test_bound_http_retries_fills_in_only_what_is_unset(monkeypatch):
    from modalops.register.registry import bound_http_retries

    for name in HTTP_RETRY_BOUNDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    values = bound_http_retries()
    assert values["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert (
        values["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == HTTP_RETRY_BOUNDS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
