# Two commands do all the set-up (each creates .venv on first use, idempotent):
#   make lab    set everything up and open the student notebooks in JupyterLab
#   make test   set everything up and run the tests (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: setup sandbox-deps lab test test-avx2 test-fast bench bench-full clean-data help sync check-notebooks
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

# JupyterLab on the student notebooks, for root too (containers, cloud VMs: Jupyter refuses root
# without --allow-root) and without a browser (SSH, headless: it says so, and Jupyter prints the URL
# to open). LAB_ARGS passes more options, e.g. `make lab LAB_ARGS="--port=8890"`.
LAB_ARGS ?=
lab: setup
	@flags="$(LAB_ARGS)"; \
	if [ "$$(id -u)" = 0 ]; then flags="--allow-root $$flags"; fi; \
	if ! $(BIN)/python -c "import webbrowser; webbrowser.get()" >/dev/null 2>&1; then \
	  flags="--no-browser $$flags"; \
	  echo "[course] No web browser found here: open the http://... URL printed below in a browser"; \
	  echo "[course] (on a remote machine, tunnel first: ssh -L 8888:localhost:8888 you@host)."; \
	fi; \
	exec $(BIN)/jupyter lab $$flags notebooks/

# Unit and end-to-end tests, then every solution notebook re-executed by nbval (fast profile).
# Then test-avx2: the training/grading-related tests and the solutions once more on oneDNN's AVX2
# kernels (what an AVX2-only CPU such as an AMD EPYC runs), one thread, so memory corruption aborts.
test: setup sandbox-deps
	COURSE_PROFILE=fast MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider -q --durations=25 tests solutions --nbval-lax
	$(MAKE) --no-print-directory test-avx2

# Autograding runs every student kernel in bubblewrap (instructor/sandbox.py; README, Security): the
# tests grade hostile submissions with it. Installed here when missing (root and apt-get, e.g. CI).
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap; }; \
	  else echo "[course] bubblewrap is missing: autograde refuses to grade (sudo apt-get install bubblewrap)"; fi; }

AVX2_TESTS := tests/test_isa.py tests/test_training.py tests/test_compression.py tests/test_fastpath.py
test-avx2: setup
	ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 COURSE_PROFILE=fast MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -p no:cacheprovider -q --durations=10 $(AVX2_TESTS) solutions --nbval-lax

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
