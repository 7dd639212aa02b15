# Two commands on a fresh clone: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
# The development tree (requirements.lock: tests, benchmarks, other Keras backends).
STAMP := $(VENV)/.installed-stamp
# The runtime tree only (requirements-runtime.lock), installed by `make demo` when the
# development tree is not there; `make install` replaces it with the development tree.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEMO_DIR ?= demo_out
# VERBOSE=1: the demo shows TensorFlow's start-up log lines (tools/demo.sh).
VERBOSE ?= 0

export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow

.PHONY: install install-runtime test test-all demo clean

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

# Re-runs only when the pins or the package metadata change, so a second install is a no-op.
# A venv set up by `make demo` holds tensorflow-cpu, which shares its files with tensorflow:
# it is removed first so that the two never overwrite each other.
$(STAMP): requirements.lock setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) uninstall -y tensorflow-cpu 2>/dev/null || true
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps -e .
	rm -f $(RUNTIME_STAMP)
	touch $@

# The runtime only: no compiled bytecode for modules never imported, and without
# TensorFlow's C++ headers (tensorflow/include, ~290 MB; they serve only to compile
# custom ops, which nothing here does): ~1.4 GB in all instead of 3.9 GB.
$(RUNTIME_STAMP): requirements-runtime.lock setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --no-compile -r requirements-runtime.lock
	$(PIP) install --no-compile --no-deps -e .
	$(PY) -c "import os, shutil, sysconfig; shutil.rmtree(os.path.join(sysconfig.get_paths()['purelib'], 'tensorflow', 'include'), ignore_errors=True)"
	touch $@

test: install
	$(PY) -m pytest -q -m "not slow" tests

test-all: install
	$(PY) -m pytest -q tests

# The development tree serves the demo too: it is used when installed (and kept up to date).
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(RUNTIME_STAMP))
	VERBOSE=$(VERBOSE) PY=$(PY) bash tools/demo.sh $(DEMO_DIR)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
