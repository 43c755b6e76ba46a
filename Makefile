# Two commands do all the set-up (each creates .venv on first use, idempotent):
#   make lab    set everything up and open the student notebooks in JupyterLab
#   make test   set everything up and run the tests (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: setup lab test test-fast bench bench-full clean-data help sync check-notebooks
help:
	@echo "make lab | make test | make bench | make release | make demo (see README)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

# Unit and end-to-end tests, then every solution notebook re-executed by nbval (fast profile).
test: setup
	COURSE_PROFILE=fast MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider -q tests solutions --nbval-lax

bench: setup
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_notebooks.py

bench-full: setup
	$(BIN)/python benchmarks/bench_full_profile.py

# Source notebooks <-> their jupytext text twins (solutions_py/); lint nbgrader metadata.
sync: setup
	$(BIN)/python -m authoring sync

check-notebooks: setup
	$(BIN)/python -m authoring check

clean-data:
	rm -rf data/mini-*

-include instructor/instructor.mk
release collect autograde feedback export demo bench-autograde: setup
