# Two commands on a fresh clone: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo_out

export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow

.PHONY: install test test-all demo clean

install: $(STAMP)

# Re-runs only when the pins or the package metadata change, so a second install is a no-op.
$(STAMP): requirements.lock setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

test: install
	$(PY) -m pytest -q -m "not slow" tests

test-all: install
	$(PY) -m pytest -q tests

demo: install
	TF_CPP_MIN_LOG_LEVEL=3 bash tools/demo.sh $(DEMO_DIR)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
