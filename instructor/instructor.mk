# Instructor workflow (included from the Makefile): thin targets over instructor/cli.py,
# which wraps nbgrader's own commands. See README "For instructors".
#   make release                      solutions/ -> notebooks/ (nbgrader generate_assignment --force),
#                                     due dates of course_calendar.toml into the gradebook
#   make collect FROM=downloads/      FROM/<student>/<assignment>/*.ipynb -> submitted/ (checked, timestamp.txt)
#   make collect FROM=lms/ ZIP=ch1_basics   LMS files/zips <student>_<notebook>.ipynb -> nbgrader zip_collect
#   make autograde [JOBS=N] [STUDENT=id | STUDENTS=a,b,c | STUDENTS=@list.txt] [ASSIGNMENTS="ch1_basics ..."] [FORCE=1]
#                                     JOBS students at once (default: the number of cores)
#                                     each student kernel in bubblewrap; SANDBOX=0: without a sandbox
#   make feedback [STUDENT=id] [RELEASE_FEEDBACK=1] [FULL=1]   FULL=1: hidden tests included
#   make export [GRADES=grades.csv]   nbgrader's CSV, grades_lms.csv (one row per student, for the LMS), the table
#   make analytics [ASSIGNMENTS=...]  per exercise: mean, share with full points, frequent failures (+ analytics.png)
#   make demo [ASSIGNMENTS=...]       a whole term replayed in build/demo (due dates, late, resubmission, export)
#   make bench-autograde              time to autograde one student's whole course (fast profile, 2 cores)
#   make bench-parallel-autograde     serial vs JOBS=2 autograde of 12 generated students x 5 chapters
VENV ?= .venv
INSTRUCTOR = $(VENV)/bin/python -m instructor
FROM ?= downloads
GRADES ?= grades.csv
DEMO_DIR ?= build/demo

.PHONY: release collect autograde feedback export analytics table demo bench-autograde bench-parallel-autograde
release:
	$(INSTRUCTOR) release $(ASSIGNMENTS)

collect:
	$(INSTRUCTOR) collect $(FROM) $(if $(ZIP),--zip $(ZIP)) $(if $(FORCE),--force)

autograde:
	$(INSTRUCTOR) autograde $(ASSIGNMENTS) $(if $(STUDENT),--student $(STUDENT)) $(if $(STUDENTS),--students $(STUDENTS)) $(if $(JOBS),--jobs $(JOBS)) $(if $(FORCE),--force) $(if $(SANDBOX),--sandbox $(SANDBOX))

feedback:
	$(INSTRUCTOR) feedback $(ASSIGNMENTS) $(if $(STUDENT),--student $(STUDENT)) $(if $(RELEASE_FEEDBACK),--release) $(if $(FULL),--full)

export:
	$(INSTRUCTOR) export --to $(GRADES)

analytics:
	$(INSTRUCTOR) analytics $(ASSIGNMENTS)

table:
	$(INSTRUCTOR) table

demo:
	$(INSTRUCTOR) demo --workdir $(DEMO_DIR) $(ASSIGNMENTS)

bench-autograde:
	$(VENV)/bin/python benchmarks/bench_autograde.py

bench-parallel-autograde:
	$(VENV)/bin/python benchmarks/bench_parallel_autograde.py

analytics table: setup
