# Two commands do everything: `make demo` (main job) and `make test` (test suite).
# Installs use the CPU build of torch that lies on this machine; a CUDA build is never pulled.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-all lint bench clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Pin the CPU torch wheel first, so that no dependency can pull a CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev,hf,ray,evolve]" "$(TORCH_PIN)"
	touch $(STAMP)

# The environment with every extra: dev (tests), hf (local Hugging Face models), ray (backend),
# evolve (Optuna, the optuna-tpe search arm).
setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bitlens demo --out runs/demo

# Lint (ruff: rules and formatting) and types (mypy) over the package, tests and benchmarks.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: $(STAMP) chromium lint
	$(PY) -m pytest -q

test-all: $(STAMP) chromium
	$(PY) -m pytest -q -m ""

# The report test opens the page in headless Chromium. Install Debian's `chromium` when it is
# missing: as root (CI) with apt-get, elsewhere with passwordless sudo if there is one. Without
# it the browser test skips, except where CI=true, where it fails.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "chromium missing and no root: the browser test will skip"; exit 0; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
	    --no-install-recommends chromium || echo "could not install chromium"; }

clean:
	rm -rf $(VENV) runs .pytest_cache
