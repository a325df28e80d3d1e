# Both targets set up .venv first (tools/setup_env.sh: idempotent, instant once done).
CONFIG ?= configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py
PYTEST_ARGS ?=
export WANDB_MODE ?= offline

.PHONY: env train test test-fast
env:
	bash tools/setup_env.sh

train: env
	.venv/bin/python tools/train.py $(CONFIG)

test: env
	.venv/bin/python -m pytest $(PYTEST_ARGS)

test-fast: env
	.venv/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)
