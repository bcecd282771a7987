"""The public recordings the cases are composed from, each installed offline from a package.

- aeon 1.6.0's wheel (PyPI) bundles BasicMotions (UEA archive: a smart watch's accelerometer and
  gyroscope at 10 Hz, four activities, 80 recordings of 10 s) and Daphnet S06R02E0 (Bachlin et
  al.: three body-worn accelerometers at 64 Hz on a Parkinson's patient walking, freezing-of-gait
  episodes annotated). The wheel is downloaded with pip without installing aeon.
- scikit-learn's bundled `digits` (UCI optical recognition of handwritten digits, 1,797 8x8
  images from 43 writers).
- Debian's espeak-ng (a formant speech synthesiser and its voices) for spoken digits.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
AEON = "aeon==1.6.0"
BASIC_MOTIONS = {
    "train": "aeon/datasets/data/BasicMotions/BasicMotions_TRAIN.ts",
    "test": "aeon/datasets/data/BasicMotions/BasicMotions_TEST.ts",
}
DAPHNET = "aeon/datasets/data/Daphnet_S06R02E0/S06R02E0.csv"
SPEECH_RATE = 16_000


def aeon_wheel(cache: Path) -> Path:
    """The aeon wheel from PyPI (no dependencies, not installed), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("aeon-1.6.0-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", AEON,
                        "-d", str(cache)], check=True)  # fmt: skip
        found = sorted(cache.glob("aeon-1.6.0-*.whl"))
    if not found:
        raise SystemExit(f"pip download {AEON} left no wheel in {cache}")
    return found[0]


def _parse_ts():
    """The .ts parser of examples/basic_motions/prepare.py (one parser for the format)."""
    path = REPO / "examples" / "basic_motions" / "prepare.py"
    mod_spec = importlib.util.spec_from_file_location("basic_motions_prepare", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.parse_ts


def basic_motions(cache: Path) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """Per archive split: recordings (6 x 100: acc xyz, gyro xyz at 10 Hz) and activities."""
    parse_ts = _parse_ts()
    with zipfile.ZipFile(aeon_wheel(cache)) as z:
        return {part: parse_ts(z.read(m).decode("utf-8")) for part, m in BASIC_MOTIONS.items()}


def daphnet(cache: Path) -> pd.DataFrame:
    """Daphnet S06R02E0: t (s from the first row), 9 acceleration channels, freeze (0/1)."""
    with zipfile.ZipFile(aeon_wheel(cache)) as z, z.open(DAPHNET) as f:
        df = pd.read_csv(f)
    t = pd.to_datetime(df.pop("timestamp"))
    df.insert(0, "t", (t - t.iloc[0]).dt.total_seconds())
    return df.rename(columns={"is_anomaly": "freeze"})


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: (n, 8, 8) in 0..1 and their digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target


WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@lru_cache(maxsize=4096)
def speak(text: str, voice: str, speed: int = 160, pitch: int = 50) -> np.ndarray:
    """espeak-ng saying `text` in `voice`, as float32 mono at 16 kHz (leading/trailing silence trimmed)."""
    from scipy.signal import resample_poly

    from benchmarks.real.compose import read_wav

    if not espeak_available():
        raise SystemExit("espeak-ng is not installed: run `make real-data-deps` (Debian espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", tmp.name, text],
                       check=True, capture_output=True)  # fmt: skip
        x, rate = read_wav(Path(tmp.name).read_bytes())
    x = resample_poly(x, SPEECH_RATE, rate).astype(np.float32)  # 22,050 Hz -> 16 kHz
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1] if loud.size else x
