# preclab: `make demo` runs the main job on built-in data, `make test` runs the tests.
# Both install what they need on a fresh Debian machine (LAPACK/OpenBLAS via apt when
# running as root; otherwise they print the exact command to run).

SWIFT      ?= swift
PYTHON     ?= python3
RELEASE    := .build/release
PRECLAB    := $(RELEASE)/preclab
APT_PKGS   := libopenblas-dev liblapacke-dev
FUZZ_SECONDS ?= 60

.PHONY: all build test test-swift test-python test-exhaustive demo demo-synth sweep bench fuzz clean deps pyenv pyenv-torch example test-slurm

# The private Python environment for cross-checks, the recorder's tests and the bench's
# numpy references: pinned versions from PyPI in .build/pyenv, never the machine's Python.
PYENV       := .build/pyenv
PYENV_PY    := $(PYENV)/bin/python
PYENV_PINS  := tools/requirements-test.txt
TORCH_PIN   := torch==2.13.0+cpu
# Seconds each test target may run before it counts as hung (tools/run-swift-tests.sh).
PRECLAB_TEST_TIMEOUT ?= 420

# The demo: real training (`preclab train`) of a small MLP policy, recorded and replayed.
DEMO_DIR    := results/demo
DEMO_TMP    := results/tmp/demo
# The synthetic demo (`make demo-synth`): two synth streams (rl and sft profiles) replayed in bf16.
SYNTH_DEMO_DIR := results/demo-synth
SYNTH_DEMO_TMP := results/tmp/demo-synth
DEMO_SHAPES := 256x256,256x512
DEMO_STEPS  := 200
DEMO_LR     := 1e-6
# Every experiment file; `make sweep-NAME` runs experiments/NAME.json into results/NAME/.
EXPERIMENTS := $(basename $(notdir $(wildcard experiments/*.json)))

all: build

# System libraries for the CLapack target. Checked by header so a fresh machine
# gets them without a manual step.
deps:
	@if [ ! -f /usr/include/lapacke.h ] || [ ! -f /usr/include/x86_64-linux-gnu/cblas.h -a ! -f /usr/include/cblas.h ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "preclab: installing $(APT_PKGS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	  else \
	    echo "preclab needs LAPACKE and OpenBLAS. Run:"; \
	    echo "  sudo apt-get install -y $(APT_PKGS)"; \
	    exit 1; \
	  fi; \
	fi

# PRECLAB_UNCHECKED_EXCLUSIVITY=1 gives the library targets the release flag the
# executables always have (Package.swift; README, "Using preclab from Swift").
build: deps
	PRECLAB_UNCHECKED_EXCLUSIVITY=1 $(SWIFT) build -c release --product preclab

test: test-swift test-python example

# Builds with both cores, then runs each test target in its own process pinned to one
# CPU and bounded in time: a hang fails with the test's name (docs/testing.md).
test-swift: deps pyenv
	$(SWIFT) build --build-tests
	PRECLAB_TEST_TIMEOUT=$(PRECLAB_TEST_TIMEOUT) PRECLAB_PYENV=$(CURDIR)/$(PYENV) \
	  tools/run-swift-tests.sh "$$($(SWIFT) build --show-bin-path)/preclabPackageTests.xctest"

test-python: pyenv
	PYTHONDONTWRITEBYTECODE=1 timeout -k 10 600 $(PYENV_PY) -m unittest discover -s tools/tests -t tools

# Creates the environment once (re-created when the pins change). A package that pip
# cannot install is written to unavailable.txt with the reason; its checks then skip
# and say so. Debian's system python3 needs python3-venv for this (installed as root).
pyenv: $(PYENV)/ready

$(PYENV)/ready: $(PYENV_PINS)
	@if ! $(PYTHON) -c "import venv, ensurepip" 2>/dev/null; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "preclab needs Python's venv module. Run:"; echo "  sudo apt-get install -y python3-venv"; exit 1; fi; \
	fi
	@rm -rf $(PYENV) && $(PYTHON) -m venv $(PYENV)
	@: > $(PYENV)/unavailable.txt
	@grep -vE '^[[:space:]]*(#|$$)' $(PYENV_PINS) | while read -r pin; do \
	  if $(PYENV_PY) -m pip install -q --disable-pip-version-check --no-input "$$pin" >$(PYENV)/pip.log 2>&1; then \
	    echo "pyenv: installed $$pin"; \
	  else \
	    name=$${pin%%[=<>]*}; reason=$$(grep -iE "error" $(PYENV)/pip.log | head -n 1); \
	    echo "$$name $$pin could not be installed: $$reason" >> $(PYENV)/unavailable.txt; \
	    echo "pyenv: COULD NOT INSTALL $$pin ($$reason): the cross-checks that need it will skip"; \
	  fi; \
	done
	@touch $@

# Optional: PyTorch's CPU build from PyPI (about 200 MB) for the recorder's PyTorch
# test and the training bench against torch. Not part of `make test`; `make bench` tries
# it and goes on without torch (its torch entries then say they were skipped).
pyenv-torch: pyenv
	@$(PYENV_PY) -c "import torch" 2>/dev/null || \
	  $(PYENV_PY) -m pip install -q --disable-pip-version-check --no-input "$(TORCH_PIN)" || \
	  echo "pyenv: COULD NOT INSTALL $(TORCH_PIN): the torch checks and bench entries will skip"

# The README's "Using preclab from Swift" example, built as a separate package that
# depends on this one and run on small files it writes into a scratch folder.
example: deps
	$(SWIFT) build --package-path examples/swift-library --scratch-path .build/example
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; timeout -k 10 300 .build/example/debug/preclab-example "$$dir"

# Checks too slow for `make test`: every fp32 input against Swift's Float16(Float).
test-exhaustive: deps
	PRECLAB_EXHAUSTIVE=1 $(SWIFT) test -c release -Xswiftc -enable-testing --filter Exhaustive

# Pretrains a base, trains two RL runs and one SFT run from it (each recorded), replays
# every stream under every bf16 policy, compares each final checkpoint with the base,
# measures the consistency of the two RL runs and runs one closed-loop pure-bf16 RL run
# against its open-loop replay; writes results/demo/ (README.md, CSV, SVG). Checkpoints
# and streams (about 520 MB) go to results/tmp/demo and are deleted even on failure.
demo: build
	@set -e; rm -rf $(DEMO_TMP); mkdir -p $(DEMO_TMP); trap 'rm -rf $(DEMO_TMP)' EXIT INT TERM; \
	PYTHON=$(PYTHON) tools/train_demo.sh $(PRECLAB) $(DEMO_TMP) $(DEMO_DIR)

# Synthesises an rl and an sft stream (about 160 MB each, in results/tmp/, deleted at
# the end even on failure), replays both in bf16 under every policy with the permuted
# null model, prints the tables and writes them with CSV and SVG plots to results/demo-synth/.
demo-synth: build
	@set -e; rm -rf $(SYNTH_DEMO_TMP); mkdir -p $(SYNTH_DEMO_TMP); trap 'rm -rf $(SYNTH_DEMO_TMP)' EXIT; \
	for profile in rl sft; do \
	  echo "== $$profile: preclab synth --shape $(DEMO_SHAPES) --steps $(DEMO_STEPS) --lr $(DEMO_LR) --profile $$profile"; \
	  $(PRECLAB) synth -o $(SYNTH_DEMO_TMP)/$$profile.stream --shape $(DEMO_SHAPES) --steps $(DEMO_STEPS) \
	    --lr $(DEMO_LR) --profile $$profile --quiet; \
	  mkdir -p $(SYNTH_DEMO_DIR)/$$profile; \
	  $(PRECLAB) replay $(SYNTH_DEMO_TMP)/$$profile.stream --dtype bf16 --null permute --spectral --k 16 --rank 16 --force \
	    --csv $(SYNTH_DEMO_DIR)/$$profile/replay.csv --plots $(SYNTH_DEMO_DIR)/$$profile > $(SYNTH_DEMO_TMP)/$$profile.txt; \
	  cp $(SYNTH_DEMO_TMP)/$$profile.txt $(SYNTH_DEMO_DIR)/$$profile/tables.txt; \
	  cat $(SYNTH_DEMO_DIR)/$$profile/tables.txt; echo; \
	done; \
	echo "wrote $(SYNTH_DEMO_DIR)/rl and $(SYNTH_DEMO_DIR)/sft (tables.txt, replay.csv, SVG plots); next: make -j2 sweep"

# Every experiment, in parallel with `make -j2 sweep`.
sweep: $(addprefix sweep-,$(EXPERIMENTS))

sweep-%: build
	@test -f experiments/$*.json || { echo "no experiment experiments/$*.json (have: $(EXPERIMENTS))"; exit 2; }
	$(PRECLAB) sweep experiments/$*.json --out results/$* --force

# The bench is built for the host's CPU (the name clang gives `-march=native`, e.g.
# znver4, passed as `-target-cpu` to Swift and `-march` to the C kernel, in its own build
# directory), or for AVX2 (haswell) when that name cannot be found; `make bench BENCH_CPU=`
# builds the portable x86-64 baseline, `make bench BENCH_CPU=haswell` a given CPU.
# The replay suite prints result fingerprints that must be the same for every build.
HOST_CPU   := $(shell [ "$$(uname -m)" = x86_64 ] && echo | clang -march=native -x c -c -o /dev/null -\#\#\# - 2>&1 \
                | sed -n 's/.*"-target-cpu" "\([a-z0-9_-]*\)".*/\1/p' | head -n 1)
BENCH_CPU  ?= $(or $(HOST_CPU),$(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo haswell))
BENCH_DIR  := $(if $(BENCH_CPU),.build/cpu-$(BENCH_CPU),.build)
bench: deps pyenv pyenv-torch
	PRECLAB_UNCHECKED_EXCLUSIVITY=1 $(SWIFT) build -c release --product preclab-bench $(if $(BENCH_CPU),--scratch-path $(BENCH_DIR) -Xswiftc -target-cpu -Xswiftc $(BENCH_CPU) -Xcc -march=$(BENCH_CPU))
	$(BENCH_DIR)/release/preclab-bench

# A real single-node Slurm (Debian's slurm-wlm and munge, installed with apt as root when
# missing; private config, keys and state in a temporary directory): the job array of
# tools/slurm/submit.sh and its afterok merge job must reproduce the unsharded replay
# JSON byte for byte. Not part of `make test` (docs/scale.md).
test-slurm: deps
	$(SWIFT) build --product preclab
	timeout -k 10 900 tools/slurm/test-slurm.sh $$($(SWIFT) build --show-bin-path)/preclab 3

# Fuzzes the stream, safetensors, npy/npz and JSON parsers with libFuzzer for
# FUZZ_SECONDS; new inputs go to fuzz-out/corpus, crashes to fuzz-out/crash-*.
fuzz:
	@mkdir -p fuzz-out/corpus
	fuzz/build.sh >/dev/null
	.build/fuzz/fuzz-files -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	  -artifact_prefix=fuzz-out/ fuzz-out/corpus fuzz/corpus

clean:
	rm -rf .build
