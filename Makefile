# One task runner for people and CI alike.
PY ?= python

.PHONY: test test-fast test-unit test-e2e test-editor test-team lint typecheck bench check
# everything, as the README says (unit, e2e, editors, team, static checks)
test:
	$(PY) -m pytest
# the unit tier without its slow tests: the loop to run while editing
test-fast:
	$(PY) -m pytest tests/unit -m "unit and not slow" -q
test-unit:
	$(PY) -m pytest tests/unit -m unit
test-e2e:
	$(PY) -m pytest tests/e2e -m "e2e and not editor"
test-editor:
	$(PY) -m pytest tests -m editor
test-team:
	$(PY) -m pytest tests/team -m team
lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
typecheck:
	$(PY) -m mypy
bench:
	$(PY) -m bench
check: lint typecheck test
