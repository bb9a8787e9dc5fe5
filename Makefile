# One task runner for people and CI alike.
PY ?= python

.PHONY: test lint typecheck bench check
test:
	$(PY) -m pytest
lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
typecheck:
	$(PY) -m mypy
bench:
	$(PY) -m bench
check: lint typecheck test
