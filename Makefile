# Two commands do all the set-up (each creates .venv on first use, idempotent):
#   make lab    set everything up and open the student notebooks in JupyterLab
#   make test   set everything up and run the tests (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: setup sandbox-deps lab formgrader system-packages test test-quick test-browser test-avx2 test-fast bench bench-full clean-data help sync check-notebooks
help:
	@echo "make lab | make test | make test-quick | make bench | make release | make formgrader | make demo (see README)"

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
# `make formgrader` is the instructor's JupyterLab: on the course folder (nbgrader's formgrader needs
# the course root, where nbgrader_config.py is, inside the server's root), Nbgrader menu > Formgrader
# to grade the written answers (README, step 5).
LAB_ARGS ?=
define run_lab
	@flags="$(LAB_ARGS)"; \
	if [ "$$(id -u)" = 0 ]; then flags="--allow-root $$flags"; fi; \
	if ! $(BIN)/python -c "import webbrowser; webbrowser.get()" >/dev/null 2>&1; then \
	  flags="--no-browser $$flags"; \
	  echo "[course] No web browser found here: open the http://... URL printed below in a browser"; \
	  echo "[course] (on a remote machine, tunnel first: ssh -L 8888:localhost:8888 you@host)."; \
	fi; \
	exec $(BIN)/jupyter lab $$flags $(1)
endef

lab: setup
	$(call run_lab,notebooks/)

formgrader: setup
	@echo "[course] Formgrader: in JupyterLab, menu Nbgrader > Formgrader (or the URL's /formgrader page)."
	$(call run_lab,.)

# System packages some tests use (Debian): Chromium and its driver (tests/test_browser.py, through
# Selenium; no browser download), PostgreSQL (tests/test_postgres.py). Installed here when missing,
# as root (CI, containers); elsewhere `sudo make system-packages`. Where they cannot be installed the
# tests that need them are skipped and say why.
SYSTEM_PACKAGES := chromium chromium-driver postgresql
system-packages:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	  for p in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	  done; \
	fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ]; then \
	  echo "[course] WARNING:$$missing not installed (needs root and apt-get: sudo make system-packages);"; \
	  echo "[course] the browser / PostgreSQL tests will be skipped"; exit 0; \
	fi; \
	echo "[course] installing$$missing (apt-get)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null; } || \
	  echo "[course] WARNING: apt-get install$$missing failed: the tests that need them will be skipped"

PYTEST := COURSE_PROFILE=fast MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider -q
# Tests that start a kernel, nbgrader, a browser or a full-profile notebook are marked (tests/conftest.py).
SLOW_MARKS := kernel or nbgrader or browser or full_profile or nbval

# Unit and end-to-end tests, then every solution notebook re-executed by nbval (fast profile), on
# TEST_JOBS pytest-xdist workers (default: the cores, at most 4; tests/conftest.py keeps a notebook's
# cells, and the tests of one session fixture, on one worker). Each worker runs one thread on oneDNN's
# AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2: what an AVX2-only CPU such as an AMD EPYC runs, on any x86
# machine; one thread, so the heap corruption of oneDNN#6035 aborts instead of hiding): the whole
# suite is the AVX2 check, and results are the same on AVX-512 and AVX2 machines.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
TEST_ENV := ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1
test: setup system-packages sandbox-deps
	$(TEST_ENV) $(PYTEST) -n $(TEST_JOBS) --dist loadgroup --durations=25 tests solutions --nbval-lax

# The edit loop: unit tests only (no kernel, no nbgrader, no browser, no long training), under two minutes.
test-quick: setup
	$(PYTEST) --durations=10 -m "not ($(SLOW_MARKS) or slow)" tests

# The browser tests alone (JupyterLab in headless Chromium; screenshots in build/screenshots/).
test-browser: setup system-packages
	$(PYTEST) -s -m browser tests

# Autograding runs every student kernel in bubblewrap (instructor/sandbox.py; README, Security): the
# tests grade hostile submissions with it. Installed here when missing (root and apt-get, e.g. CI).
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap; }; \
	  else echo "[course] bubblewrap is missing: autograde refuses to grade (sudo apt-get install bubblewrap)"; fi; }

# The ISA-sensitive tests and the compression chapters alone, on the AVX2 kernels, graded with one
# seed (COURSE_GRADING=1): a quick check after changing training or compression code.
AVX2_TESTS := tests/test_isa.py tests/test_training.py tests/test_compression.py tests/test_fastpath.py
AVX2_NOTEBOOKS := solutions/ch4_compression solutions/ch5_recovery
test-avx2: setup
	$(TEST_ENV) COURSE_GRADING=1 $(PYTEST) --durations=10 $(AVX2_TESTS) $(AVX2_NOTEBOOKS) --nbval-lax

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
