"""A suite of real recordings, composed into sessions on separate clocks (docs/real-data.md).

    .venv/bin/python -m benchmarks.real            # build every case, align, score, baselines
    .venv/bin/python -m benchmarks.real --small    # two sessions per case, alignment only
    make bench-real

Each case module builds one raw root from public data installed offline (`sources.py`); the
platform aligns it exactly as a pipeline run would; `score.py` alone reads the truth.
"""
