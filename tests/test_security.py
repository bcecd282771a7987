"""Trust boundaries: tar shards are read with path checks, nothing untrusted is unpickled, and
every server modalops starts (or tells a user to start) binds 127.0.0.1."""

from __future__ import annotations

import ast
import io
import os
import pickle
import re
import stat
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from modalops.shard import iter_raw_samples, iter_tar_samples
from modalops.shard.shards import iter_tar_members
from modalops.store import LocalStore
from modalops.testing.shards import write_test_shards
from modalops_demo.names import demo_spec
from tests.conftest import REPO

# ---- tar shards ---------------------------------------------------------------------------------


def _tar(*members: tarfile.TarInfo, data: bytes = b"{}") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ok = tarfile.TarInfo("good.json")
        ok.size = len(data)
        tar.addfile(ok, io.BytesIO(data))
        for info in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 2):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


MALICIOUS = {
    "absolute": (_member("/etc/cron.d/evil.json"), "is an absolute path"),
    "dotdot": (_member("../../home/user/.bashrc.json"), "contains '..'"),
    "dotdot inside": (_member("key.json/../../x.json"), "contains '..'"),
    "folder": (_member("sub/key.json"), "is not a plain '<key>.<suffix>' name"),
    "windows drive": (_member("C:evil.json"), "is an absolute path"),
    "backslash": (_member("\\\\server\\share.json"), "is an absolute path"),
    "symlink": (_member("key.lnk", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
    "hardlink": (_member("key.hard", tarfile.LNKTYPE, "good.json"), "is a hard link"),
    "char device": (_member("key.dev", tarfile.CHRTYPE), "is a character device"),
    "block device": (_member("key.blk", tarfile.BLKTYPE), "is a block device"),
    "fifo": (_member("key.fifo", tarfile.FIFOTYPE), "is a fifo"),
    "directory": (_member("key.d", tarfile.DIRTYPE), "is a folder"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_a_malicious_tar_member_is_refused_naming_shard_and_member(case):
    info, problem = MALICIOUS[case]
    url = "s3://bucket/datasets/v-x/train-000000.tar"
    with pytest.raises(ValueError) as err:
        list(iter_tar_samples(_tar(info), url))
    message = str(err.value)
    assert message.startswith(f"{url}: tar member {info.name!r}"), message
    assert problem in message


def test_a_long_pax_name_escaping_the_folder_is_refused():
    # names over 100 bytes travel in a PAX header: the check must see the real name
    info = _member("a" * 120 + "/../../../../etc/evil.json")
    with pytest.raises(ValueError, match="contains '..'"):
        list(iter_tar_members(_tar(info), "mem://pax.tar"))


def test_a_file_that_is_not_a_tar_is_named():
    with pytest.raises(ValueError, match=r"mem://junk.tar: not a readable tar shard"):
        list(iter_tar_members(io.BytesIO(b"\x00garbage" * 100), "mem://junk.tar"))


def test_real_shards_read_through_the_checked_reader(tmp_path):
    """The same reader serves iter_raw_samples and the DataModule: real shards still read."""
    from modalops.train.datamodule import ShardDataModule

    store = LocalStore(tmp_path / "store")
    manifest = write_test_shards(store, demo_spec())
    raws = list(iter_raw_samples(store, manifest, "train"))
    assert len(raws) == manifest.splits["train"].n_samples > 0
    dm = ShardDataModule.from_manifest(manifest, batch_size=4)
    inputs, presence, target = next(iter(dm.train_dataloader()))
    assert target.shape[0] == 4 and presence.shape[0] == 4

    # a poisoned shard in the split stops training with the shard named
    bad = tmp_path / "store" / manifest.splits["train"].shards[0]
    with tarfile.open(bad, "a") as tar:
        tar.addfile(_member("x.lnk", tarfile.SYMTYPE, "/etc/shadow"))
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(bad))}: tar member 'x.lnk' is a symbolic link"
    ):
        next(iter(ShardDataModule.from_manifest(manifest, batch_size=4).train_dataloader()))


def test_every_tar_read_in_the_code_goes_through_the_checked_reader():
    """No module opens tar files or webdataset pipelines on its own (writing with TarWriter is fine)."""
    allowed = {"modalops/shard/shards.py"}
    offenders = []
    for path in _source_files():
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(), rel)
        for node in ast.walk(tree):
            name = _call_name(node) if isinstance(node, ast.Call) else ""
            if (
                re.match(
                    r"^(tarfile\.(open|TarFile)|wds\.(WebDataset|DataPipeline|tarfile_to_samples)|"
                    r"webdataset\.\w+|shutil\.unpack_archive|.*\.extractall)$",
                    name,
                )
                and rel not in allowed
            ):
                offenders.append(f"{rel}:{node.lineno} {name}")
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("webdataset.tar")
                and rel not in allowed
            ):
                offenders.append(f"{rel}:{node.lineno} from {node.module} import ...")
    assert offenders == []


# ---- the decode cache's shared folder (issue 23) ---------------------------------------------


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """The system temp folder, as the default decode cache sees it (no $MODALOPS_DECODED_CACHE)."""
    import tempfile

    monkeypatch.delenv("MODALOPS_DECODED_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


def _default_path(temp_root: Path) -> Path:
    return temp_root / f"modalops-decoded-{os.getuid()}"


def test_the_default_decode_cache_is_made_private(temp_root):
    from modalops.train.decoded_cache import default_cache_dir

    made = default_cache_dir()
    assert made == _default_path(temp_root)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    (made / "kept").write_text("x")
    made.chmod(0o755)  # as older modalops left it: others could read, not write
    assert default_cache_dir() == made and (made / "kept").exists()
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def _planted(path: Path, how: str, monkeypatch) -> str:
    """A folder at the default path that someone else could have put there; its problem."""
    if how == "link":
        target = path.with_name("elsewhere")
        target.mkdir(mode=0o700)
        path.symlink_to(target)
        return "is not a folder"
    path.mkdir()
    if how == "mode 0777":
        path.chmod(0o777)
        return "has mode 0777: group or others may write to it"
    # owner: the folder is the test user's, this process claims another uid (os.getuid patched)
    path.chmod(0o700)
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    return f"is owned by uid {real}, not by you \\(uid {real + 1}\\)"


@pytest.mark.parametrize("how", ["mode 0777", "another owner", "link"])
def test_a_decode_cache_folder_someone_else_could_write_is_refused(temp_root, monkeypatch, how):
    from modalops.train.decoded_cache import default_cache_dir

    problem = _planted(_default_path(temp_root), how, monkeypatch)
    path = re.escape(str(temp_root / f"modalops-decoded-{os.getuid()}"))
    with pytest.raises(PermissionError, match=rf"decode cache folder {path} {problem}") as err:
        default_cache_dir()
    assert "Set $MODALOPS_DECODED_CACHE" in str(err.value)
    assert f"or remove {temp_root}" in str(err.value)


# ---- unpickling -----------------------------------------------------------------------------------

SOURCE_ROOTS = ("modalops", "flows", "tasks", "modalops_demo")


def _source_files() -> list[Path]:
    return sorted(p for root in SOURCE_ROOTS for p in (REPO / root).rglob("*.py"))


def _call_name(node: ast.Call) -> str:
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_const(value, expected) -> bool:
    return isinstance(value, ast.Constant) and value.value is expected


ALWAYS_UNSAFE = re.compile(
    r"^(c?pickle|dill|cloudpickle|joblib|shelve|marshal|_pickle)\.(load|loads|Unpickler|open)$"
    r"|^(pd|pandas)\.read_pickle$|^yaml\.(unsafe_load|unsafe_load_all|full_load|full_load_all)$"
    r"|^torch\.jit\.load$"
)


def unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """Calls that can unpickle (run code from) their input, found in the AST (comments and
    strings do not count)."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        where = f"{filename}:{node.lineno} {name}"
        if ALWAYS_UNSAFE.match(name):
            out.append(where)
        elif name == "torch.load":
            if not _is_const(_kw(node, "weights_only"), True):
                out.append(f"{where} without weights_only=True")
        elif re.match(r"^(np|numpy)\.load$", name):
            allow = _kw(node, "allow_pickle")
            if allow is not None and not _is_const(allow, False):
                out.append(f"{where} with allow_pickle")
        elif re.match(r"^yaml\.load(_all)?$", name):
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            text = ast.unparse(loader) if loader is not None else ""
            if not re.search(r"\bSafeLoader$|\bCSafeLoader$", text):
                out.append(f"{where} without Loader=SafeLoader")
    return out


def test_the_unsafe_load_check_finds_what_it_should():
    bad = """
import pickle, torch, numpy as np, yaml, joblib
pickle.loads(b"")
torch.load("x.pt")
torch.load("x.pt", weights_only=False)
np.load("x.npy", allow_pickle=True)
yaml.load(text)
yaml.load(text, Loader=yaml.FullLoader)
joblib.load("m.joblib")
"""
    assert len(unsafe_loads(bad)) == 7, unsafe_loads(bad)
    good = """
# torch.load("x.pt")  (a comment is not a call)
s = "pickle.loads(data)"
torch.load("x.pt", map_location="cpu", weights_only=True)
np.load(buf, allow_pickle=False)
np.load(buf)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
"""
    assert unsafe_loads(good) == []


def test_no_unsafe_load_in_the_source_tree():
    found = []
    for path in _source_files():
        found += unsafe_loads(path.read_text(), path.relative_to(REPO).as_posix())
    assert found == []


class _Payload:
    """Unpickling this runs `Path.touch(marker)`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real (tiny) training run: its Lightning checkpoint and uploaded model checkpoint."""
    from modalops.config.train import TrainConfig
    from modalops.train.training import train_model

    tmp = tmp_path_factory.mktemp("train")
    store = LocalStore(tmp / "store")
    manifest = write_test_shards(store, demo_spec())
    cfg = TrainConfig(max_epochs=1, batch_size=8, hidden_dim=4, baselines=False)
    result = train_model(store, manifest, cfg, "fused", ["camera", "vibration"], tmp / "work")
    ckpts = sorted((tmp / "work").rglob("*.ckpt"))
    assert len(ckpts) == 1, ckpts  # ModelCheckpoint's best, written weights-only
    return {"store": store, "result": result, "ckpt": ckpts[0]}


def test_the_lightning_checkpoint_loads_weights_only(trained):
    from modalops.train.training import load_best_state

    assert trained["ckpt"].exists()
    state = load_best_state(trained["ckpt"])
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("loader", ["load_best_state", "load_classifier"])
def test_a_checkpoint_with_a_pickled_object_is_refused(trained, tmp_path, loader):
    from modalops.train.models import load_classifier
    from modalops.train.training import load_best_state

    marker = tmp_path / "pwned"
    source = trained["ckpt"] if loader == "load_best_state" else None
    if source is not None:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    else:
        ckpt = torch.load(
            io.BytesIO(trained["store"].get_bytes(trained["result"].checkpoint_key)),
            map_location="cpu",
            weights_only=True,
        )
    ckpt["extra"] = _Payload(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(ckpt, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    # the payload works: a plain unpickle runs it
    torch.load(evil, map_location="cpu", weights_only=False)
    assert marker.exists()
    marker.unlink()
    fn = load_best_state if loader == "load_best_state" else load_classifier
    with pytest.raises(ValueError, match=re.escape(str(evil))):
        fn(evil)
    assert not marker.exists(), "the checkpoint's payload ran"


# ---- loopback binds --------------------------------------------------------------------------------


class _FakeProc:
    pid = 0

    def poll(self):
        return None


@pytest.fixture
def spawned(monkeypatch):
    """Start each service with `_spawn` captured: the exact command lines and environments."""
    import modalops.review.service as ls_service
    import modalops.services as services

    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_spawn(name, cmd, env, log_path):
        calls.append((name, [str(c) for c in cmd], dict(env)))
        return _FakeProc()

    for mod in (services, ls_service):
        monkeypatch.setattr(mod, "_spawn", fake_spawn)
        monkeypatch.setattr(mod, "require_loopback", lambda service: service)
        monkeypatch.setattr(mod, "wait_http", lambda *a, **k: True)
    monkeypatch.setattr(services, "_worker_online", lambda *a, **k: True)
    monkeypatch.setattr(
        ls_service, "ensure_installed", lambda home, venv=None: Path("label-studio")
    )
    monkeypatch.setattr(ls_service, "port_is_open", lambda port: False)
    return calls


def _loopback(value: str) -> bool:
    return value in ("127.0.0.1", "localhost") or urlparse(value).hostname == "127.0.0.1"


def _host_args(cmd: list[str]) -> list[str]:
    flags = {"--host", "-H", "--internal-host", "--bind", "--address"}
    return [cmd[i + 1] for i, c in enumerate(cmd[:-1]) if c in flags]


def test_every_started_server_binds_loopback(spawned, tmp_path):
    from modalops.review.service import start_label_studio
    from modalops.services import (
        start_mlflow_server,
        start_prefect_server,
        start_prefect_worker,
        start_s3_server,
    )

    start_prefect_server(tmp_path / "prefect")
    start_s3_server(tmp_path)
    start_label_studio(tmp_path / "ls", port=18089)
    start_prefect_worker(tmp_path / "worker", "http://127.0.0.1:4200/api")
    start_mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "mlflow")
    names = [c[0] for c in spawned]
    assert names == ["prefect", "moto", "label-studio", "prefect-worker", "mlflow"]
    for name, cmd, env in spawned:
        line = " ".join(cmd)
        assert "0.0.0.0" not in line and "::" not in _host_args(cmd), (name, line)
        hosts = [v for k, v in env.items() if k.endswith(("_HOST", "_BIND"))]
        assert all(_loopback(h) for h in hosts), (name, hosts)
        if name == "prefect-worker":
            # a worker only calls out; its optional health server would bind PREFECT_WORKER_WEBSERVER_HOST
            assert "--with-healthcheck" not in cmd or _loopback(
                env.get("PREFECT_WORKER_WEBSERVER_HOST", "")
            )
            assert _loopback(env["PREFECT_API_URL"])
        else:
            assert _host_args(cmd) and all(_loopback(h) for h in _host_args(cmd)), (name, line)
    prefect_env = spawned[0][2]
    assert prefect_env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"


def test_printed_mlflow_commands_bind_loopback():
    """Every `mlflow server|ui` command line the code or docs tell a user to run (the team
    stack's infra/ is the documented exception: its servers serve a team)."""
    files = [
        *_source_files(),
        *sorted((REPO / "docs").rglob("*.md")),
        REPO / "README.md",
        REPO / "Makefile",
    ]
    found = []
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r"mlflow (server|ui)\b[^`'\"\n]*", line):
                found.append((f"{path.relative_to(REPO)}:{n}", m.group(0)))
    assert found, "the CLI prints an `mlflow ui` hint; the scan must see it"
    bad = [(where, cmd) for where, cmd in found if not re.search(r"--host[ =]127\.0\.0\.1", cmd)]
    assert bad == []


def _listening_ips(port: int) -> set[str]:
    import psutil

    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


@pytest.mark.parametrize("bind", ["0.0.0.0", "127.0.0.1"])
def test_a_started_server_listening_beyond_loopback_is_stopped_and_named(tmp_path, bind):
    """The live check every start_* ends with: a real process listening on 0.0.0.0 is refused
    (and stopped); the same process on 127.0.0.1 passes."""
    from modalops.services import (
        Service,
        ServiceError,
        _spawn,
        free_port,
        require_loopback,
        wait_http,
    )

    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", bind, str(port)]
    proc = _spawn("http", cmd, dict(os.environ), tmp_path / "http.log")
    service = Service("http", f"http://127.0.0.1:{port}", proc, tmp_path / "http.log")
    try:
        assert wait_http(f"{service.url}/", 30, proc)
        if bind == "127.0.0.1":
            assert require_loopback(service) is service and proc.poll() is None
        else:
            with pytest.raises(ServiceError, match=rf"http listened on 0\.0\.0\.0:{port}"):
                require_loopback(service)
            assert proc.wait(timeout=10) is not None  # stopped
    finally:
        service.stop()


def test_running_prefect_and_moto_listen_on_loopback_only(prefect_api, s3_server):
    for url in (prefect_api, s3_server.url):
        port = urlparse(url).port
        ips = _listening_ips(port)
        assert ips == {"127.0.0.1"}, (url, ips)
