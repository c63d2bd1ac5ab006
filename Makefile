# Thin wrappers; the README explains each target.
PY := .venv/bin/python
ASSIGNMENT ?= 01-corr2d
JOBS ?= 2

.PHONY: setup book pdf test release autograde feedback grades bench sandbox clean

setup:
	bash scripts/setup.sh

book: setup
	$(PY) -m conv_course.cli book

pdf:
	bash scripts/setup.sh --system  # the PDF is printed by Debian's chromium
	$(PY) -m conv_course.cli book
	$(PY) -m conv_course.cli pdf --html _build/html
	$(PY) -m conv_course.cli pdf --html _build/html --edition zh_CN

test:
	bash scripts/setup.sh --system
	$(PY) -m pytest

release: setup
	$(PY) -m conv_course.cli release

autograde: setup
	$(PY) -m conv_course.cli autograde $(ASSIGNMENT) --jobs $(JOBS)

feedback: setup
	$(PY) -m conv_course.cli feedback $(ASSIGNMENT)

grades: setup
	$(PY) -m conv_course.cli grades

sandbox:
	bash scripts/setup.sh --system
	$(PY) -m conv_course.cli sandbox install

# Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for older OpenBLAS builds; they hold
# numpy's current OpenBLAS to older, slower kernels, so the benchmarks run without them (bench_conv
# prints the kernels it used). Tests and the book keep the environment as it is.
bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m conv_course.cli bench

clean:
	rm -rf _build .jupyter_cache
