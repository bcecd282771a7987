# Both entry points bootstrap .venv on first use; nothing needs installing by hand.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench clean install system-deps browser compose review-venv bench-deps bench-real real-data-deps

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned, so nothing later can pull a CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Label Studio in its own venv (.modalops/labelstudio/venv; its pins clash with ours).
review-venv: $(STAMP)
	$(BIN)/modalops review install

# Benchmark-only packages (benchmarks/input_pipeline.py compares against LitData), pinned in
# constraints.txt. litdata declares torchvision, which has no CPU build here and which its
# streaming path never imports, so it goes in without deps; its runtime deps it does import are
# installed by name (obstore: its chunk GETs; tifffile: its TIFF serializer). Not in the dev
# extra: pip would resolve torchvision there.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps litdata
	$(BIN)/python -m pip install --quiet -c constraints.txt obstore tifffile

demo: $(STAMP)
	$(BIN)/modalops-demo run

# The real-data suite (docs/real-data.md): espeak-ng (Debian) speaks the digits of two cases.
real-data-deps:
	@command -v espeak-ng >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y espeak-ng)

bench-real: $(STAMP) real-data-deps
	$(BIN)/python -m benchmarks.real

# Debian packages the tests drive: chromium (tests/test_ui.py, through Playwright; no browser
# download), docker-compose (tests/test_infra.py validates infra/compose.yaml offline; there
# is no daemon) and, when no PostgreSQL answers on 127.0.0.1:5432, postgresql's server binaries
# (the `postgres` fixture in tests/conftest.py then starts a private cluster; the system service
# is not needed). One apt-get run, only for what is missing.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	python3 -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

browser compose: system-deps

# Two pytest-xdist workers: the suite waits on servers more than on CPU. The tests needing Label
# Studio share one worker (tests/conftest.py); the Dask test runs last on its worker.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf .modalops
