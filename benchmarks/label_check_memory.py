"""Memory and time of the label check's out-of-fold fits, capped and uncapped, as windows grow.

    .venv/bin/python benchmarks/label_check_memory.py                 # 25k, 100k, 400k windows
    .venv/bin/python benchmarks/label_check_memory.py --windows 50000 --cap 20000

The label check (modalops/validate/label_check.py) fits a logistic regression per fold on the
per-window features of every labelled window. `validation.label_check_max_fit_windows` caps the
windows one fold's model trains on; every window is still predicted. This prints, for each
number of windows, the peak RSS above the feature matrix (what the fits add) and the time of one
round of 5 folds, with the cap and without it, each in its own subprocess, side by side.

The features are synthetic (float32, 300 dimensions like the demo's four streams, 4 classes whose
means differ, 30 windows a session); what is measured is the fit, not the signal.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(windows: int, dims: int, cap: int | None) -> dict:
    """One measurement, in its own process: the peak RSS (ru_maxrss, as benchmarks/cost_growth.py)
    above the RSS just before the call. The features are built a block at a time so that building
    them leaves no transient above that RSS."""
    import numpy as np
    import psutil
    import sklearn.linear_model  # noqa: F401  (imported before the baseline RSS is read)
    import sklearn.model_selection  # noqa: F401

    from modalops.validate.label_check import out_of_fold_probs

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, windows)
    means = rng.normal(0, 1, (4, dims)).astype(np.float32)
    features = np.empty((windows, dims), dtype=np.float32)
    for start in range(0, windows, 10_000):
        block = features[start : start + 10_000]
        # noise 8x the class means' scale: out-of-fold accuracy about 0.85, not a trivial fit
        rng.standard_normal(block.shape, dtype=np.float32, out=block)
        block *= 8
        block += means[labels[start : start + 10_000]]
    groups = (np.arange(windows) // 30).astype(str)
    base = psutil.Process().memory_info().rss
    start = time.perf_counter()
    probs, _ = out_of_fold_probs(features, labels, groups, 4, 5, max_fit=cap)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "features_mb": features.nbytes / 2**20,
        "fit_mb": max(peak - base, 0) / 2**20,
        "seconds": seconds,
        "oof_accuracy": float((probs.argmax(axis=1) == labels).mean()),
    }


def run(windows: int, dims: int, cap: int | None) -> dict:
    args = [sys.executable, __file__, "--child", str(windows), "--dims", str(dims)]
    args += ["--cap", str(cap or 0)]  # 0: uncapped
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[25_000, 100_000, 400_000])
    parser.add_argument("--dims", type=int, default=300)
    parser.add_argument("--cap", type=int, default=50_000, help="label_check_max_fit_windows")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.dims, args.cap or None)))
        return
    print(
        f"{'windows':>8} {'features MB':>11} | {'fit MB capped':>13} {'uncapped':>9} | "
        f"{'s capped':>8} {'uncapped':>9} | {'acc capped':>10} {'uncapped':>9}"
    )
    for n in args.windows:
        capped, full = run(n, args.dims, args.cap), run(n, args.dims, None)
        print(
            f"{n:>8} {capped['features_mb']:>11.0f} | {capped['fit_mb']:>13.0f} "
            f"{full['fit_mb']:>9.0f} | {capped['seconds']:>8.1f} {full['seconds']:>9.1f} | "
            f"{capped['oof_accuracy']:>10.3f} {full['oof_accuracy']:>9.3f}",
            flush=True,
        )
    print(f"cap: {args.cap} windows per fold's fit; one round of 5 folds, one BLAS thread")


if __name__ == "__main__":
    main()
