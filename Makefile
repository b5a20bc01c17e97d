# replyguard developer commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck data train evaluate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,plot]"
	touch $(STAMP)

## Score the sample replies shipped in the repo with the packaged model.
demo: $(STAMP)
	$(VENV)/bin/replyguard score data/sample_replies.jsonl -o out/sample_verdicts.jsonl
	@echo
	$(VENV)/bin/replyguard classify --file data/examples/thread.txt

## Run the whole test suite.
test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

## Rebuild the fixed train/dev/test splits from the authoring passes.
data: $(STAMP)
	$(PY) -m replyguard.corpus build data

## Retrain the packaged default model on the fixed splits.
train: $(STAMP)
	$(VENV)/bin/replyguard train data/splits/train.jsonl --dev data/splits/dev.jsonl --test data/splits/test.jsonl -o models/default

evaluate: $(STAMP)
	$(VENV)/bin/replyguard evaluate data/splits/test.jsonl --report-dir reports

bench: $(STAMP)
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/batch.py
	$(PY) benchmarks/ledger.py

clean:
	rm -rf $(VENV) build dist out reports .pytest_cache
