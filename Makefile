# Quick start:  make study  (the miniature study, end to end)   |   make test  (the test suite)
# Each target creates the virtual environment first if needed (pinned by envs/cpu.txt, CPU torch).
VENV ?= .venv
CORES ?= all
# Index for the CPU torch wheel on machines whose pip does not already find it (e.g. https://download.pytorch.org/whl/cpu).
TORCH_INDEX ?=
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env study smoke real-smoke test lint clean lock-gpu conda-envs images
env: $(VENV)/.installed

$(VENV)/.installed: envs/cpu.txt envs/test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(VENV)/bin/pip install --quiet -r envs/cpu.txt -r envs/test.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

study: env
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES)
	snakemake --report results/snakemake-report.html

smoke: env
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES) --configfile config/smoke.yaml --directory results-smoke
	snakemake --configfile config/smoke.yaml --directory results-smoke --report results-smoke/results/snakemake-report.html

# SmolLM2-135M-Instruct (installed from its PyPI wheel, converted from GGUF) through the paper's code path on CPU.
real-smoke: env
	snakemake --cores $(CORES) --configfile config/real-smoke.yaml --replace-workflow-config --directory results-real-smoke

# Two test processes (pytest-xdist): most tests use one core, and the SLURM run mostly waits on its polling; the tests
# that share a fixture stay in one process (tests/conftest.py). TEST_PROCESSES=0 runs everything in this process.
TEST_PROCESSES ?= 2
test: env
	pytest -q $(if $(filter-out 0,$(TEST_PROCESSES)),-n $(TEST_PROCESSES) --dist loadscope)

# The workflow's formatting (snakefmt, configured in pyproject.toml; `snakefmt Snakefile workflow` fixes it) and
# Snakemake's own lints.
lint: env
	snakefmt --check Snakefile workflow
	snakemake --lint

# Re-lock the GPU environment from its top-level requirements (needs uv and PyPI), then its conda file.
lock-gpu:
	uv pip compile --no-config --index-url https://pypi.org/simple --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock-gpu" envs/gpu.in -o envs/gpu.txt
	$(PYTHON) envs/conda_env.py gpu

# Both images from containers/ (podman), as local .sif files where Apptainer exists, and resources/images/images.yaml
# naming them (containers/build-images.sh; IMAGE_ARGS e.g. "--only cpu --base localhost/bookworm-minbase:latest").
IMAGE_ARGS ?=
images:
	bash containers/build-images.sh $(IMAGE_ARGS)

# The conda environment files (snakemake --sdm conda) from the pinned lists.
conda-envs:
	$(PYTHON) envs/conda_env.py cpu gpu

clean:
	rm -rf results logs benchmarks .snakemake
