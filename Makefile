# Small targets over the project's own scripts; CI runs `bash .ci/run` (= scripts/test.sh).
# The Python targets use .venv, which `make setup` (or scripts/test.sh) creates.

PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup build lint test-fast test bench fuzz house

setup:            ## Chromium, .venv with the test tools, and the package built into it
	bash scripts/setup.sh
	$(MAKE) build

build:            ## build the native module into .venv (release)
	maturin develop --release --locked -q

lint:             ## formatting, clippy, ruff, mypy, the stub check (needs `make build`)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	ruff check python tests benches scripts
	ruff format --check python tests benches scripts
	mypy
	$(PY) -m mypy.stubtest ferrovec._native

test-fast:        ## the core's tests and the Python tests, without the fuzzing and sanitizer runs
	cargo test -p ferrovec-core --locked
	$(PY) -m pytest tests -q -m "not slow"

test:             ## everything CI runs (installs what it needs)
	bash scripts/test.sh

bench:            ## the quick benchmarks; see benches/README.md for the long ones
	$(PY) benches/bench_exact.py --n 100000
	$(PY) benches/bench_interrupt.py --rounds 3

fuzz:             ## every fuzz target for 60 s (SECONDS=... to change)
	bash scripts/fuzz.sh $${SECONDS:-60}

house:            ## the longest files and functions, and the core's module graph
	$(PY) scripts/house.py
