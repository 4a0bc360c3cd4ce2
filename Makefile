# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make book   install the pinned environment, execute every chapter, render _build/html
#   make test   install likewise and run the whole test suite
# Other targets: make test-fast (the unit tests only, under a minute),
#                make references (re-bless the executed reference notebooks),
#                make benchmark (time every chapter's execution),
#                make costs (what a posterior costs, in training epochs),
#                make bandits-full (record chapter 5's full bandit protocol), make clean.
# To execute the chapters yourself: make lab (JupyterLab, every chapter opens as a notebook),
#                make chapter N=3 (execute chapter 3 on its own and print its verdict lines).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The quick scale, base seed and thread count that the reference notebooks were blessed with.
QUICK  := ESSAY_SCALE=quick ESSAY_SEED=0 ESSAY_THREADS=2 ESSAY_DTYPE=float32 PYTHONHASHSEED=0
# In number order: the verdict chapter reads the references blessed before it.
CHAPTERS := $(sort $(wildcard chapters/[0-9]*.md))
# make chapter N=3: the chapter numbered N (chapters/03_*.md), and where its execution goes.
CHAPTER     = $(wildcard chapters/0$(N)_*.md chapters/$(N)_*.md)
CHAPTER_OUT = _build/chapter/$(basename $(notdir $(CHAPTER)))
CHAPTER_NB  = $(CHAPTER_OUT)/$(basename $(notdir $(CHAPTER))).ipynb
# JupyterLab's settings override in .venv: a double click opens a chapter's .md as a notebook.
LAB_VIEWERS := $(VENV)/share/jupyter/lab/settings/overrides.d/bayes-at-scale.json

ifneq ($(filter chapter,$(MAKECMDGOALS)),)
ifneq ($(words $(CHAPTER)),1)
$(error N=$(N) names no chapter: give a chapter's number, as in make chapter N=3 (the chapters: $(notdir $(CHAPTERS))))
endif
endif

.PHONY: install browser book test test-fast references benchmark costs bandits-full lab chapter clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c 'import torch, laplace; assert torch.__version__.startswith("2.13.0"), torch.__version__'
	touch $(STAMP)

# A fresh _build/html (executions stay cached in _build/.jupyter_cache), and a stamp whose time
# is the build's start: tests/test_site.py rebuilds only when a source is newer than it.
book: install
	rm -rf _build/html
	@mkdir -p _build && touch _build/.book-started
	$(QUICK) ESSAY_RECORDS=_build/records $(BIN)/jupyter-book build --all -W --keep-going .
	@mv _build/.book-started _build/html/.build-ok
	@echo "The book is in _build/html/index.html"

# The browser test (tests/test_site.py) drives Debian's chromium; installed here where missing.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation; \
	else \
	  echo "The browser test needs /usr/bin/chromium: install Debian's chromium package (apt-get install chromium)" >&2; exit 1; \
	fi

# The unit tests first, on two processes (pytest-xdist); then the book tests one at a time -
# nbval re-executing every reference notebook (each runs its replicates on every core), and the
# browser test, which renders the site from those references without executing them again.
test: install browser
	$(QUICK) ESSAY_RECORDS= $(BIN)/python -m pytest -n 2 -m "not book" tests
	$(QUICK) ESSAY_RECORDS= $(BIN)/python -m pytest -m book tests

# The unit tests alone (no training-heavy tests, no nbval, no book build): under a minute.
test-fast: install
	$(QUICK) ESSAY_RECORDS= $(BIN)/python -m pytest -m "not slow and not book" -n 2 tests

# Each chapter's verdict records (tests/references/records/<claim>.json) are written beside its
# reference notebook; the verdict chapter, blessed last, reads them.
references: install
	@rm -rf tests/references/records
	@for md in $(CHAPTERS); do \
	  out=tests/references/$$(basename $$md .md).ipynb; echo "blessing $$out"; \
	  $(QUICK) ESSAY_RECORDS=tests/references/records $(BIN)/jupytext --to ipynb --execute --output $$out $$md || exit 1; \
	done

benchmark: install
	$(QUICK) $(BIN)/python benchmarks/chapters.py

costs: install
	$(QUICK) $(BIN)/python benchmarks/costs.py
	$(QUICK) $(BIN)/python benchmarks/costs.py --round 2

# Chapter 5's round-2 protocol at the full scale (10 seeds, every radius; slow on a laptop),
# recorded with its checksum to data/bandits/, where chapter 5 reads it.
bandits-full: install
	ESSAY_SCALE=full ESSAY_SEED=0 ESSAY_THREADS=1 ESSAY_DTYPE=float32 PYTHONHASHSEED=0 \
	  $(BIN)/python benchmarks/bandits.py --scale full --record

# JupyterLab from the book's root, at the quick scale: jupytext's server extension (switched on
# by the jupytext wheel, .venv/etc/jupyter/jupyter_server_config.d/jupytext.json) serves every
# chapters/*.md as a notebook, and the override written here makes it the default viewer.
# As root (a container) the server needs --allow-root.
lab: install
	@mkdir -p $(dir $(LAB_VIEWERS))
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' > $(LAB_VIEWERS)
	$(QUICK) $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

# One chapter on its own, at the quick scale, in a fresh kernel: the executed notebook and the
# verdict records go to _build/chapter/<chapter>/; then the chapter's verdict lines are printed.
chapter: install
	@rm -rf $(CHAPTER_OUT) && mkdir -p $(CHAPTER_OUT)
	$(QUICK) ESSAY_RECORDS=$(CHAPTER_OUT)/records $(BIN)/jupytext --to ipynb --execute --output $(CHAPTER_NB) $(CHAPTER)
	@$(BIN)/python -c 'import sys, nbformat; \
	  outputs = [o for c in nbformat.read(sys.argv[1], as_version=4).cells for o in c.get("outputs", [])]; \
	  lines = [l for o in outputs if o.output_type == "stream" for l in o.text.splitlines()]; \
	  print(*[l for l in lines if l.startswith("CLAIM C")] or ["(no verdict line)"], sep="\n")' $(CHAPTER_NB)

clean:
	rm -rf _build
