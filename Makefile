# Two commands do everything: `make demo` (main job) and `make test` (test suite).
# Installs use the CPU build of torch that lies on this machine; a CUDA build is never pulled.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-all bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Pin the CPU torch wheel first, so that no dependency can pull a CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]" "$(TORCH_PIN)"
	touch $(STAMP)

setup: $(STAMP)
	-$(PY) -m pip install -q -e ".[dev,hf,ray]" "$(TORCH_PIN)"

demo: $(STAMP)
	$(VENV)/bin/bitlens demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

clean:
	rm -rf $(VENV) runs .pytest_cache
