# The two commands of the README:
#   make demo   set up the PyTorch environment and run the example hub end to end
#   make test   set up both environments and run lint, types and every test
# Environments (created on first use, rebuilt when the dependency files change):
#   .venv/torch      Python 3.11 + torch 2.13.0 (CPU) + hubcore + hubcore-torch
#   .venv/megengine  Python 3.10 + MegEngine 1.13 (numpy<2) + hubcore + hubcore-megengine

SHELL := /bin/bash
PY311 := $(shell tools/find-python 3.11)
PY310 := $(shell tools/find-python 3.10)
TORCH := .venv/torch
MGE := .venv/megengine
PIP_FLAGS := --quiet --disable-pip-version-check
DEPS := pyproject.toml plugins/torch/pyproject.toml plugins/megengine/pyproject.toml \
        docs/example-plugin/pyproject.toml requirements-dev.txt
DEMO_HOME := .demo-home
HUB := ./examples/hub

.PHONY: demo test lint test-torch test-megengine weights envs bench clean browser

demo: $(TORCH)/.ready weights
	@rm -rf $(DEMO_HOME)
	@export HUBCORE_HOME=$(DEMO_HOME) PATH=$(TORCH)/bin:$$PATH; set -ex; \
	hubcore plugins; \
	hubcore list $(HUB) --verbose; \
	hubcore help $(HUB) tinynet; \
	hubcore load $(HUB) tinynet --pretrained; \
	hubcore load $(HUB) tinynet --pretrained; \
	hubcore load $(HUB) tinynet --pretrained c100 --kw num_classes=100; \
	hubcore load $(HUB) tokenizer; \
	pin=$$(python $(HUB)/package_demo.py $(DEMO_HOME)/package file://$(CURDIR)/$(DEMO_HOME)/store/tinynet); \
	hubcore help fsspec:file://$(CURDIR)/$(DEMO_HOME)/store/tinynet; \
	hubcore load fsspec:file://$(CURDIR)/$(DEMO_HOME)/store/tinynet --commit $$pin --trust; \
	hubcore load fsspec:file://$(CURDIR)/$(DEMO_HOME)/store/tinynet --commit $$pin
	@echo "demo: the second tinynet load above was served from the cache in $(DEMO_HOME)"
	@echo "demo: so was the second load of the package (pinned by its sha256 digest)"
	@export HUBCORE_HOME=$(DEMO_HOME) PATH=$(TORCH)/bin:$$PATH; set -e; \
	hubcore site build --repo $(HUB) --package $(DEMO_HOME)/package --title "Example hub" \
	  -o $(DEMO_HOME)/site > /dev/null; \
	echo "demo: the catalog of the example hub is at $$(pwd)/$(DEMO_HOME)/site/index.html"

test: lint test-torch test-megengine

lint: $(TORCH)/.ready
	$(TORCH)/bin/ruff check .
	$(TORCH)/bin/ruff format --check .
	$(TORCH)/bin/mypy

test-torch: $(TORCH)/.ready weights browser
	HUBCORE_TEST_REQUIRE=torch,hubcore_torch,hubcore_numpy_example,selenium HUBCORE_TEST_BROWSER=1 \
	  $(TORCH)/bin/python -m pytest tests plugins/torch/tests

test-megengine: $(MGE)/.ready weights
	HUBCORE_TEST_REQUIRE=megengine,hubcore_megengine,hubcore_numpy_example \
	  $(MGE)/bin/python -m pytest tests plugins/megengine/tests -m "not browser"

weights: $(TORCH)/.ready
	@$(TORCH)/bin/python examples/hub/make_weights.py --check > /dev/null

envs: $(TORCH)/.ready $(MGE)/.ready

# Headless Chromium for the catalog's browser tests (Debian packages; root installs them).
browser:
	@command -v chromium > /dev/null && command -v chromedriver > /dev/null || { \
	  test "$$(id -u)" = 0 || { echo "install chromium and chromium-driver (as root)" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Benchmarks against curl, torch.hub and MegEngine's downloader (not part of make test).
bench: $(TORCH)/.ready $(MGE)/.ready weights
	$(TORCH)/bin/python bench/run.py $(BENCH_ARGS)

$(TORCH)/.ready: $(DEPS)
	@test -n "$(PY311)" || { echo "Python 3.11 is required" >&2; exit 1; }
	rm -rf $(TORCH) && $(PY311) -m venv $(TORCH)
	$(TORCH)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(TORCH)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	$(TORCH)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt \
	  -e . -e plugins/torch -e docs/example-plugin
	touch $@

$(MGE)/.ready: $(DEPS)
	@test -n "$(PY310)" || { echo "Python 3.10 is required" >&2; exit 1; }
	rm -rf $(MGE) && $(PY310) -m venv $(MGE)
	$(MGE)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(MGE)/bin/pip install $(PIP_FLAGS) "megengine==1.13.*" "numpy<2"
	$(MGE)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt "numpy<2" \
	  -e . -e plugins/megengine -e docs/example-plugin
	touch $@

clean:
	rm -rf .venv $(DEMO_HOME) examples/hub/weights
