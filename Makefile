# textmill: `make run` and `make test` are the two commands a new machine needs.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Python 3.10 (TFX 1.16 needs < 3.11): PATH first, then pyenv's install.
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python \
	/root/.pyenv/versions/3.10*/bin/python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' \
	2>/dev/null && { command -v $$p; break; }; done)
WORK_DIR ?= work
SERVING_DIR ?= $(WORK_DIR)/serving
FAMILY ?= distilgpt2
PRESET ?= tiny
# The summarization family reads (text, summary) pairs.
CORPUS_FLAGS := $(if $(filter summarization,$(FAMILY)),--summaries)
CORPUS_DIR := $(WORK_DIR)/corpus$(if $(CORPUS_FLAGS),-summaries)
# The longformer_classifier family reads (text, label) pairs.
ifeq ($(FAMILY),longformer_classifier)
CORPUS_FLAGS := --labels
CORPUS_DIR := $(WORK_DIR)/corpus-labels
endif
# Next sentence prediction needs more documents than the standard
# library has: the installed packages' docstrings too.
ifeq ($(FAMILY),bert_nsp)
CORPUS_FLAGS := --with-packages
CORPUS_DIR := $(WORK_DIR)/corpus-packages
RUN_FLAGS := --train-steps 3000
endif
# The translation family reads (English, TRANSLATION_LANG) pairs from the
# machine's gettext catalogs (/usr/share/locale/LANG/LC_MESSAGES/*.mo).
TRANSLATION_LANG ?= de
ifeq ($(FAMILY),translation)
CORPUS_FLAGS := --translations $(TRANSLATION_LANG)
CORPUS_DIR := $(WORK_DIR)/corpus-$(TRANSLATION_LANG)
RUN_FLAGS := --train-steps 3000
endif
# Test processes: most of a pipeline test is single-threaded Python (Beam,
# TFX, Transform's analysis), so two processes on two cores finish sooner.
# A file's tests stay in one process and share its module fixtures.
TEST_WORKERS ?= 2
# The 30 slowest tests close the report: where the suite spends its time.
PYTEST_ARGS ?= --durations=30 -n $(TEST_WORKERS) --dist loadfile
# LiteRT-LM's packer and runtime: their own venv (protobuf >= 6.31, which
# TF 2.16 cannot share one with); textmill finds it through this variable.
LITERT_VENV ?= .venv-litert
export TEXTMILL_LITERT_VENV := $(abspath $(LITERT_VENV))
# Container image of every Vertex AI step, e.g.
# us-central1-docker.pkg.dev/PROJECT/textmill/textmill:1 (see docs/cloud.md).
IMAGE ?=

.PHONY: setup run test test-fast lint format bench clean image

setup: $(BIN)/.installed $(LITERT_VENV)/.installed

$(BIN)/.installed: pyproject.toml requirements/constraints.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: install it (e.g. pyenv install 3.10.13) or set PYTHON310=/path/to/python3.10"; exit 1; }
	test -x $(BIN)/python || $(PYTHON310) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.3.1"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $@

$(LITERT_VENV)/.installed: requirements/litert-lm.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: install it (e.g. pyenv install 3.10.13) or set PYTHON310=/path/to/python3.10"; exit 1; }
	test -x $(LITERT_VENV)/bin/python || $(PYTHON310) -m venv $(LITERT_VENV)
	$(LITERT_VENV)/bin/python -m pip install --quiet --upgrade "pip==24.3.1"
	$(LITERT_VENV)/bin/python -m pip install --quiet -c requirements/litert-lm.txt \
		litert-lm litert-lm-api litert-lm-builder
	touch $@

run: setup
	$(BIN)/textmill corpus $(CORPUS_FLAGS) $(CORPUS_DIR)
	$(BIN)/textmill run --family $(FAMILY) --preset $(PRESET) \
		--data '$(CORPUS_DIR)/*' --work-dir $(WORK_DIR)/$(FAMILY) \
		--serving-dir $(SERVING_DIR) $(RUN_FLAGS)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check textmill tests bench
	$(BIN)/ruff format --check textmill tests bench

format: setup
	$(BIN)/ruff check --fix textmill tests bench
	$(BIN)/ruff format textmill tests bench

bench: setup
	for b in bench/*/run.py; do $(BIN)/python $$b || exit 1; done

# Needs a running Docker engine, logged in to the registry
# (gcloud auth configure-docker REGION-docker.pkg.dev).
image:
	@test -n "$(IMAGE)" || { echo "Set IMAGE, e.g. make image IMAGE=us-central1-docker.pkg.dev/PROJECT/textmill/textmill:1"; exit 1; }
	docker build -t $(IMAGE) .
	docker push $(IMAGE)

clean:
	rm -rf $(WORK_DIR) .pytest_cache
