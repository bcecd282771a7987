"""Registry consumers: a fresh venv with only mlflow + torch loads the champion without this
repository, and `mlflow models serve --env-manager local` answers REST requests.

The consumer venv is built once (pip, from the local wheel cache/index) under .modalops/ and
reused by later sessions; building it takes a few minutes the first time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from modalops.register import RescoringSet, log_and_register
from modalops.testing.models import fit_tiny, make_samples, save_tiny, tiny_classifier, tiny_report
from modalops_demo.names import LABELS, demo_spec
from tests.conftest import suite_cache_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TORCH = torch.__version__.split("+")[0]
VENV = suite_cache_dir() / f"consumer-venv-mlflow{mlflow.__version__}-torch{TORCH}"

CONSUMER_SCRIPT = """
import base64, importlib.util, json, sys
import pandas as pd
import mlflow

# the consumer has no modalops, no lightning: only mlflow, torch and their dependencies
before = {m: importlib.util.find_spec(m) is not None for m in ("modalops", "lightning", "prefect")}
doc = json.load(open(sys.argv[2]))
binary = set(doc["binary"])  # binary columns travel as base64 in JSON


def frame_of(rows):
    return pd.DataFrame(
        {c: [base64.b64decode(r[c]) if c in binary else r[c] for r in rows] for c in doc["columns"]}
    )


frame = frame_of(doc["rows"])
from_dir = mlflow.pyfunc.load_model(sys.argv[1]).predict(frame)
champion = mlflow.pyfunc.load_model("models:/tiny@champion")
from_registry = champion.predict(frame)
absurd = champion.predict(frame_of([doc["absurd"]]))
print(json.dumps({
    "before": before,
    "modalops_file": sys.modules["modalops"].__file__,
    "labels": from_dir["label"].tolist(),
    "probability": from_dir["probability"].tolist(),
    "registry_labels": from_registry["label"].tolist(),
    "issues": from_dir["input_issues"].tolist(),
    "absurd": json.loads(absurd.to_json(orient="records"))[0],
}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of ours, the consumer venv first on PATH."""
    env = {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": "",
        "PYTHONNOUSERSITE": "1",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def consumer_python() -> Path:
    """A venv with `pip install mlflow torch` and nothing else, built once and cached."""
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "consumer-venv.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # two test sessions must not build it together
        if not (VENV / ".complete").exists():
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    f"mlflow=={mlflow.__version__}",
                    f"torch=={TORCH}",
                ],
                check=True,
                timeout=1500,
                env={**os.environ, "PYTHONPATH": ""},
            )
            (VENV / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A tiny fused model registered as champion; its model dir copied out; inputs as JSON."""
    spec = demo_spec()
    tmp = tmp_path_factory.mktemp("consumer")
    save_tiny(
        fit_tiny(tiny_classifier(spec), make_samples(spec, 16, 0), steps=40), tmp / "model.pt"
    )
    test = make_samples(spec, 8, seed=5)
    data = RescoringSet.from_raw_samples(test, spec, slices=["site"])
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = log_and_register(
        tracking_uri=uri,
        experiment="consumer",
        model_name="tiny",
        checkpoint_path=tmp / "model.pt",
        report=tiny_report(temperature=1.3, threshold=0.4),
        config_dict={},
        tags={"dataset_version": "v1"},
        artifacts={},
        test_samples_for_rescoring=data,
    )
    assert result.promoted
    mlflow.set_tracking_uri(uri)
    expected = mlflow.pyfunc.load_model("models:/tiny@champion").predict(data.inputs)
    # only the logged model directory travels to the consumer, not this repository
    model_dir = Path(
        mlflow.artifacts.download_artifacts("models:/tiny@champion", dst_path=str(tmp / "dl"))
    )
    consumer_dir = tmp / "elsewhere"
    shutil.copytree(model_dir, consumer_dir / "model")
    columns = list(spec.streams)
    binary = [n for n, s in spec.streams.items() if s.kind in ("image", "video", "audio")]
    rows = [
        {c: base64.b64encode(r[c]).decode() if c in binary else r[c] for c in columns}
        for r in data.inputs.to_dict("records")
    ]
    # the issue's row: 5,000 rows of 1e6 where one window holds 100 (the demo's 100 Hz, 1 s)
    absurd = {**rows[0], "vibration": [[1e6, 1e6, 1e6]] * 5000}
    doc = {"columns": columns, "binary": binary, "rows": rows, "absurd": absurd}
    (consumer_dir / "inputs.json").write_text(json.dumps(doc))
    return {
        "uri": uri, "dir": consumer_dir, "rows": rows, "absurd": absurd, "columns": columns,
        "expected": expected,
    }  # fmt: skip


def test_fresh_venv_loads_champion_without_the_repo(consumer_python, champion):
    workdir = champion["dir"]
    (workdir / "consume.py").write_text(CONSUMER_SCRIPT)
    proc = subprocess.run(
        [str(consumer_python), "consume.py", str(workdir / "model"), "inputs.json"],
        cwd=workdir,
        env=_clean_env(MLFLOW_TRACKING_URI=champion["uri"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] == {"modalops": False, "lightning": False, "prefect": False}
    # the modalops code that ran is the copy packaged inside the model, not this checkout
    assert out["modalops_file"].startswith(str(workdir / "model"))
    expected = champion["expected"]
    assert out["labels"] == expected["label"].tolist() == out["registry_labels"]
    assert set(out["labels"]) <= set(LABELS)
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=1e-4)
    # clean rows pass every stream's checks; the absurd one abstains, naming stream and problem
    assert out["issues"] == [""] * len(expected)
    absurd = out["absurd"]
    print("absurd row, as the consumer sees it:", json.dumps(absurd, indent=1))
    assert absurd["abstained"] is True and absurd["abstain_reason"].startswith("input issues")
    issues = absurd["input_issues"]
    assert "vibration: vibration_rate = 5000 (expected vibration__rate in [80, 120]" in issues
    assert "vibration: vibration_max = 1e+06 (expected vibration__max in [-inf, 100])" in issues
    assert "vibration: vibration_plausible_max = 1e+06" in issues  # from training statistics
    assert absurd["missing_streams"] == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_rest(consumer_python, champion):
    port = _free_port()
    log = open(champion["dir"] / "serve.log", "w")  # noqa: SIM115 - outlives the Popen call
    server = subprocess.Popen(
        [str(VENV / "bin" / "mlflow"), "models", "serve", "--env-manager", "local",
         "-m", str(champion["dir"] / "model"), "-p", str(port), "--host", "127.0.0.1", "-w", "1"],
        cwd=champion["dir"],
        env=_clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the workers die with it
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (champion["dir"] / "serve.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{base}/ping", timeout=2).status == 200:
                    break
            assert time.monotonic() < deadline, "server did not answer /ping within 120 s"
            time.sleep(0.5)
        rows = [*champion["rows"], champion["absurd"]]
        columns = champion["columns"]
        body = {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        }
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            predictions = json.loads(resp.read())["predictions"]
        assert len(predictions) == len(rows)
        *clean, absurd = predictions
        assert [p["label"] for p in clean] == champion["expected"]["label"].tolist()
        assert absurd["abstained"] is True and "vibration_rate = 5000" in absurd["input_issues"]
        assert all(
            isinstance(p["abstained"], bool) and 0 < p["probability"] <= 1 for p in predictions
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
