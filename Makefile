# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else they need is installed by these targets (a virtualenv in .venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench-smoke bench-peers-setup bench-accuracy bench-latency bench-real proto lint-proto clean
.DEFAULT_GOAL := demo

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed ## run the demo incident end to end on a local Neo4j
	$(BIN)/rootgraph demo

test: $(BIN)/.installed ## run the test suite (starts and stops its own Neo4j)
	$(BIN)/pytest

bench-smoke: $(BIN)/.installed ## quick versions of the benchmarks (CI runs these)
	$(BIN)/python bench/ingest_decode.py --quick
	$(BIN)/python bench/inference.py --quick
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/accuracy.py --quick
	$(BIN)/python bench/latency.py --quick
	$(BIN)/python bench/real/run.py --quick

PEERS := .venv-peers
$(PEERS)/.installed: bench/peers-requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --upgrade pip
	$(PEERS)/bin/pip install -q -r bench/peers-requirements.txt
	$(PEERS)/bin/pip install -q --no-deps sfr-pyrca==1.0.1  # its javabridge does not build on 3.11
	touch $@

bench-peers-setup: $(PEERS)/.installed ## the accuracy/latency peers (RCAEval, PyRCA) in .venv-peers

bench-accuracy: $(BIN)/.installed bench-peers-setup ## the full accuracy benchmark, peers included
	$(BIN)/python bench/accuracy.py --write

bench-latency: $(BIN)/.installed bench-peers-setup ## the full latency benchmark, PyRCA included
	$(BIN)/python bench/latency.py --write

bench-real: $(BIN)/.installed bench-peers-setup ## the real-data benchmark (Nezha, bench/real/), peers included
	$(BIN)/python bench/real/run.py
	$(BIN)/python bench/real/peer_cases.py

proto: $(BIN)/.installed ## regenerate the protobuf/gRPC stubs
	$(BIN)/python proto/generate.py

lint-proto: ## buf lint the proto (buf comes from the npm registry, pinned in proto/package.json)
	cd proto && npm ci --silent --no-audit --no-fund && ./node_modules/.bin/buf lint

clean:
	rm -rf $(VENV) build *.egg-info
