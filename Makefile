# Quick start: `make demo` (collect -> train -> eval on Two-Rooms) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0

.PHONY: demo test install install-dev bench lint clean

# torch goes in first and pinned: an unpinned torch makes pip fetch the CUDA wheels (GBs).
$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/ami demo

test: install-dev
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/plan_latency.py

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs build src/*.egg-info
