# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

$(BIN)/radar-assets: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The viewer's JavaScript dependencies (and Swagger UI / ReDoc) from the npm registry, pinned by the lock file;
# --ignore-scripts: no package needs a build step, and none may phone home at install time.
VIEWER := radar_assets/api/viewer
$(VIEWER)/node_modules/.package-lock.json: $(VIEWER)/package.json $(VIEWER)/package-lock.json
	npm ci --prefix $(VIEWER) --ignore-scripts --no-audit --no-fund

install: $(BIN)/radar-assets $(VIEWER)/node_modules/.package-lock.json

demo: install
	$(BIN)/radar-assets demo $(ARGS)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/render.py ../shared/data/level2/KLOT/KLOT20210625_075154_V06
	$(BIN)/python bench/synth.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/live.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/scale_out.py

clean:
	rm -rf .radar-assets
