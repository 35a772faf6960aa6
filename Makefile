# truepar — two commands on a fresh machine with Python ≥ 3.11, git and make:
#   make demo    set everything up, run the main job
#   make test    set everything up, run ruff, the import contract, mypy and every test
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup browser demo test lint typecheck pytest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "truepar needs Python >= 3.11 (python3.11 or newer on PATH)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	@test -f .truepar/keys/private.pem || $(BIN)/truepar keys init --dir .truepar/keys
	$(BIN)/truepar demo --keys .truepar/keys --ledger .truepar/ledger.sqlite

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# The HTML report is tested in real headless Chromium: Debian's package, installed once.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    echo "installing Debian's chromium (for the HTML report's browser test)"; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  else echo "no chromium and no apt-get: the browser test will be skipped (fails under CI)"; fi; }

# Two passes: most tests side by side (they wait on processes, sleeps and sockets more than they
# compute), then, alone, the few that measure real parallelism and need the cores to themselves.
pytest: setup browser
	$(BIN)/pytest -q --numprocesses auto --maxprocesses 4 --dist loadfile -m "not idle_cores"
	$(BIN)/pytest -q -m idle_cores

test: lint typecheck pytest

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .truepar .pytest_cache .mypy_cache .ruff_cache
