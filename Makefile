# The README's two commands: `make run` and `make test`. Both set up what they need
# (a virtual environment with the project, the Debian packages when root) and are fast
# when nothing changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := .make
PIP    := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test setup system-deps lint bench bench-engine bench-latency bench-firmware bench-compression bench-sweep clean

run: setup
	$(BIN)/malak-run $(ARGS)

# Two workers, one test file each at a time (module fixtures, such as the smoke experiments'
# shared cache, stay in one process); tests use one torch thread each.
PYTEST_ARGS ?= -n 2 --dist loadfile

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)/venv system-deps

# Reinstalled only when the packaging or the pins change. constraints.txt pins torch to the
# CPU build so pip never resolves a CUDA one.
$(STAMP)/venv: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools>=77" wheel
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	@$(PIP) install -q -c constraints.txt -e ".[dev,cluster]" || echo "note: the [cluster] extra (ray) did not install; its test is skipped"
	@mkdir -p $(STAMP) && touch $@

system-deps:
	@scripts/install-system-deps.sh

lint: setup
	$(BIN)/ruff check malak_pipe stages tests benchmarks hydra_plugins

# Benchmarks write JSON (figures quoted in docs and closing notes come from these files).
# The full set takes over an hour on a 2-core CPU; run one with e.g. `make bench-firmware`.
bench: bench-engine bench-latency bench-firmware bench-compression bench-sweep

bench-engine: setup
	$(BIN)/python benchmarks/engine.py --out benchmarks/results/engine.json

bench-latency: setup
	$(BIN)/python benchmarks/latency.py --out benchmarks/results/latency.json

bench-firmware: setup
	$(BIN)/python benchmarks/firmware.py --out benchmarks/results/firmware.json

bench-sweep: setup
	$(BIN)/python benchmarks/sweep.py --out benchmarks/results/sweep.json

bench-compression: setup
	$(BIN)/python benchmarks/compression.py --out benchmarks/results/compression.json --epochs 20 --seeds 0 1 2

clean:
	rm -rf $(STAMP) outputs/runs outputs/multirun
