# Two entry points for a fresh machine: `make demo` and `make test`.
# Both are idempotent: each step checks what is already there.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.galago-installed

.PHONY: demo test setup system clean

system:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v Xvfb >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi liberation; then \
		echo "Installing chromium, xvfb and fonts (apt)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			chromium xvfb xauth fonts-liberation fonts-dejavu-core >/dev/null; \
	fi

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

setup: system $(STAMP)

demo: setup
	$(VENV)/bin/galago demo

test: setup
	$(PY) -m pytest -q -x -n 2 tests

clean:
	rm -rf $(VENV) runs
