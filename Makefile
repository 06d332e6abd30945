# The two commands of the README: `make run` and `make test`. Each creates .venv when needed.
# `make run` starts the real bot when SLACK_BOT_TOKEN is in the environment or .env, else the
# sandbox (a local Slack page, AWS and services); ARGS go to the sandbox.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: install run test lint fmt check clean screenshot

# Installs go through uv, pinned and put in the venv by pip: it fetches and installs the ~55
# packages in parallel, about 1 s where pip takes about 20 s, so a fresh clone serves the sandbox
# within seconds. When uv cannot be installed, pip does the same install, only slower.
# Both compile the packages to bytecode as they install them (pip does by default): where
# PYTHONDONTWRITEBYTECODE is set (as on this machine), nothing else would, and every process
# the suite starts (three workers, the crash matrix's bots, the benchmarks) compiled boto3,
# moto and the rest from source again: importing the bot took 2.5 s of CPU instead of 0.7 s.
UV_VERSION := 0.13.9
define install_extra
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION) \
		|| echo "make: could not install uv $(UV_VERSION); installing with pip (slower)" >&2
	@if test -x $(BIN)/uv; then \
		echo "$(BIN)/uv pip install --compile-bytecode -e '.[$(1)]'"; \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[$(1)]'; \
	else \
		echo "$(BIN)/python -m pip install -e '.[$(1)]'"; \
		$(BIN)/python -m pip install --quiet -e '.[$(1)]'; \
	fi
endef

$(STAMP): pyproject.toml
	$(call install_extra,dev)
	@touch $(STAMP) $(RUN_STAMP)

# `make run` needs only the bot and the sandbox's moto, not the dev tools.
$(RUN_STAMP): pyproject.toml
	$(call install_extra,sandbox)
	@touch $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	@$(BIN)/python -m sandbox.launch $(ARGS)

# The suite runs on WORKERS processes (pytest-xdist); coverage measures each and combines them.
# Three on two cores: the sandbox, browser and crash-matrix tests spend most of their time
# waiting in real time, so a third worker fills the cores while they wait. Those slow tests are
# collected first (tests/conftest.py) and idle workers take work from busy ones (worksteal).
# The project's own modules are compiled once before the workers start, and the run may write
# bytecode (PYTHONDONTWRITEBYTECODE emptied for it) so that pytest keeps its rewritten tests.
WORKERS ?= 3
test: $(STAMP)
	@$(BIN)/coverage erase
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q bot commands pipeline store sandbox
	PYTHONDONTWRITEBYTECODE= $(BIN)/coverage run -m pytest -n $(WORKERS) --dist worksteal $(ARGS)
	@$(BIN)/coverage combine -q
	$(BIN)/coverage report --fail-under=90

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

# The browser test again, then its overview screenshot becomes the README's picture.
screenshot: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser
	cp artifacts/screenshots/03-deployed.png docs/sandbox.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* .sandbox artifacts
