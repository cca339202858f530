# make demo | make test | make test-slow | make bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m research.train +experiment=demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --durations=15

bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python -m research.bench --out bench

clean:
	rm -rf $(VENV) outputs multirun bench
