# Quick start:  make study  (the miniature study, end to end)   |   make test  (the test suite)
# Each target creates the virtual environment first if needed (pinned by envs/cpu.txt, CPU torch).
VENV ?= .venv
CORES ?= all
# Index for the CPU torch wheel on machines whose pip does not already find it (e.g. https://download.pytorch.org/whl/cpu).
TORCH_INDEX ?=
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env study smoke test lint clean
env: $(VENV)/.installed

$(VENV)/.installed: envs/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(VENV)/bin/pip install --quiet -r envs/cpu.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

study: env
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES)

smoke: env
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES) --configfile config/smoke.yaml --directory results-smoke

test: env
	pytest -q

lint: env
	snakemake --lint

clean:
	rm -rf results logs benchmarks .snakemake
