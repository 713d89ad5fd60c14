# emo-lightning — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
ARGS ?=

# The local mirror beside the checkout (data and models under their Hub ids), when there is one.
SHARED := $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/data),)
export EMO_DATA_DIR ?= $(SHARED)/data
endif
ifneq ($(wildcard $(SHARED)/models),)
export EMO_MODEL_DIR ?= $(SHARED)/models
endif

.PHONY: help install train test test-precision test-wheel test-all lint format clean bench-speed bench-levers bench-train bench-quality bench-infer bench-checkpointing bench-data wandb-sync

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-19s %s\n", $$1, $$2}'

install:  ## create .venv, install torch first, then the package with dev extras
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"

train:  ## fine-tune (default: MiniLM on dair-ai/emotion); extra overrides via ARGS="..."
	$(PY) train.py $(ARGS)

test:  ## the default test suite, one worker per core (~10 min on 2 cores; full-dataset training excluded)
	$(PY) -m pytest -n auto --dist worksteal --durations=15 $(ARGS)

PRECISION_TESTS ?= tests/test_hardware.py tests/test_training.py tests/test_batching.py
test-precision:  ## the precision-dependent tests as an AMX machine (bf16) and as an AVX2 one (fp32), on any machine
	EMO_HARDWARE=amx $(PY) -m pytest -n auto $(PRECISION_TESTS) $(ARGS)
	EMO_HARDWARE=avx2 $(PY) -m pytest -n auto $(PRECISION_TESTS) $(ARGS)

test-wheel:  ## the wheel with the core only in a fresh venv: emo-train / emo-predict / emo-evaluate from an empty folder, each extra refused in one line (~5 min)
	$(PY) -m pytest -m slow tests/test_wheel.py $(ARGS)

test-all:  ## every test, slow full-dataset training included
	$(PY) -m pytest -n auto -m "" $(ARGS)

bench-speed:  ## training throughput: batching modes, precisions, the HF Trainer; real MiniLM (~25 min)
	$(PY) benchmarks/bench_speed.py $(ARGS)

bench-levers:  ## ms/step of the training step's levers (frozen embeddings, clipping in AdamW, …) alternated in one process
	$(PY) benchmarks/bench_levers.py $(ARGS)

bench-train:  ## make train end to end beside an HF Trainer script doing the same work, alternated (~1 h on 2 CPU cores)
	$(PY) benchmarks/bench_train.py $(ARGS)

bench-checkpointing:  ## peak memory and ms/step with and without model.gradient_checkpointing; real MiniLM, batch 16 × 128 / 512
	$(PY) benchmarks/bench_checkpointing.py $(ARGS)

bench-infer:  ## inference texts/s, p50/p99 and accuracy: pipeline() vs our backends, then the service's load test; RUN=<run>
	$(PY) benchmarks/bench_infer.py $(if $(RUN),--run $(RUN)) $(ARGS)

bench-data:  ## data=files at 100k and 1M rows: peak memory, tokenization rows/s, time to the first step, cold and warm
	$(PY) benchmarks/bench_data.py $(ARGS)

SEEDS ?= 3
GO_SEEDS ?= 3
bench-quality:  ## test quality of the MiniLM presets over SEEDS seeds → docs/RESULTS.md (~7 h on a 2-core CPU; resumes)
	$(PY) benchmarks/bench_quality.py --seeds $(SEEDS) --go-seeds $(GO_SEEDS) $(ARGS)

wandb-sync:  ## upload the offline W&B runs below SWEEP=outputs/multirun/<time> or RUN=outputs/runs/<time>
	@test -n "$(SWEEP)$(RUN)" || { echo "usage: make wandb-sync SWEEP=outputs/multirun/<time> (or RUN=outputs/runs/<time>)" >&2; exit 2; }
	@runs=$$(find $(SWEEP) $(RUN) -type d -name 'offline-run-*' | sort); \
	test -n "$$runs" || { echo "no offline W&B runs below $(SWEEP)$(RUN): train with logger=wandb" >&2; exit 1; }; \
	$(VENV)/bin/wandb sync $$runs

lint:  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:  ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:  ## remove run outputs and caches
	rm -rf outputs multirun .pytest_cache .ruff_cache
