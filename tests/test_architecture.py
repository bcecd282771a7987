"""The core's shape: import layers (import-linter), no import cycles, no demo names in the core."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "modalops"

# The demo's stream names, labels, metadata columns and telemetry channels. "audio" and "image"
# are kind names, so they may appear; everything here belongs to modalops_demo/ alone.
DEMO_NAMES = (
    "camera", "vibration", "notes", "normal", "proximity", "fault", "near_miss", "site",
    "camera_model", "microphone", "lighting", "station_id", "ax", "ay", "az", "site_a", "site_b",
    "site_c",
)  # fmt: skip
# Inside string literals, only the distinctive ones are searched as words ("normal" and "fault"
# are English words, "site" is in "site-packages").
DISTINCTIVE = ("camera", "vibration", "near_miss", "proximity", "camera_model", "microphone",
               "lighting", "station_id", "site_a", "site_b", "site_c")  # fmt: skip
_WORDS = re.compile(r"\b(" + "|".join(DISTINCTIVE) + r")\b")


def _demo_names_in(path: Path) -> list[str]:
    hits = []
    source = path.read_text(encoding="utf-8")
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        after_dot, prev = prev == ".", tok.string
        if tok.type == tokenize.NAME and tok.string in DEMO_NAMES and not after_dot:
            # attribute access (`rng.normal`) is a library's name, not the demo's
            hits.append(f"{path.relative_to(REPO)}:{tok.start[0]}: name {tok.string}")
        elif tok.type == tokenize.STRING:
            body = tok.string.strip("rbfuRBFU").strip("'\"")
            if body in DEMO_NAMES or _WORDS.search(body):
                hits.append(f"{path.relative_to(REPO)}:{tok.start[0]}: string {tok.string[:60]}")
    return hits


def test_no_demo_name_in_the_core():
    hits = [h for p in sorted(CORE.rglob("*.py")) for h in _demo_names_in(p)]
    assert not hits, "demo names in the core (they belong in modalops_demo/):\n" + "\n".join(hits)


def test_the_name_check_finds_a_planted_name(tmp_path: Path):
    planted = tmp_path / "planted.py"
    planted.write_text('STREAM = "camera"\nx = 1  # comments may mention a camera\n')
    # a check that could never fail would prove nothing
    assert len(_demo_names_in_rel(planted)) == 1


def _demo_names_in_rel(path: Path) -> list[str]:
    global REPO
    saved, REPO = REPO, path.parent
    try:
        return _demo_names_in(path)
    finally:
        REPO = saved


def test_import_layers_hold():
    """import-linter contracts in pyproject.toml: core free of flows/tasks/Prefect/the demo,
    ML code free of Prefect/boto3/MLflow, stages layered."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "broken" not in out.stdout.lower() or " 0 broken" in out.stdout.lower()


def _module_graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph("modalops")


def test_no_import_cycles_in_the_core():
    graph = _module_graph()
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in edges.get(m, []):
            if n.endswith("__init__") or n not in edges:
                continue
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n) :] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m)
    # a package importing its own submodules (re-exports in __init__) is not a cycle of concern
    real = [
        c for c in cycles if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))
    ]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)
