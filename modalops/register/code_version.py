"""Which code made a run: the git commit of this package's checkout, as MLflow's own tag."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's run page shows it as the source version


@functools.cache
def source_commit() -> str | None:
    """The git commit of the code that runs (this package's checkout), with `-dirty` when its
    tracked files differ from it; None outside a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "diff", "--quiet", "HEAD", "--"],
            capture_output=True, timeout=10,
        ).returncode  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head}-dirty" if dirty == 1 else head


def code_tags() -> dict[str, str]:
    """The tags that name the code of a run: empty where no commit can be read."""
    commit = source_commit()
    return {GIT_COMMIT_TAG: commit} if commit else {}
