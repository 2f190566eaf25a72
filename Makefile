# preclab: `make demo` runs the main job on built-in data, `make test` runs the tests.
# Both install what they need on a fresh Debian machine (LAPACK/OpenBLAS via apt when
# running as root; otherwise they print the exact command to run).

SWIFT      ?= swift
PYTHON     ?= python3
RELEASE    := .build/release
PRECLAB    := $(RELEASE)/preclab
APT_PKGS   := libopenblas-dev liblapacke-dev
FUZZ_SECONDS ?= 60

.PHONY: all build test test-swift test-python test-exhaustive demo sweep bench fuzz clean deps

# The demo: two small synthetic streams (rl and sft profiles) replayed in bf16.
DEMO_DIR    := results/demo
DEMO_TMP    := results/tmp/demo
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

build: deps
	$(SWIFT) build -c release --product preclab

test: test-swift test-python

test-swift: deps
	$(SWIFT) test

test-python:
	$(PYTHON) -m unittest discover -s tools/tests -t tools

# Checks too slow for `make test`: every fp32 input against Swift's Float16(Float).
test-exhaustive: deps
	PRECLAB_EXHAUSTIVE=1 $(SWIFT) test -c release -Xswiftc -enable-testing --filter Exhaustive

# Synthesises an rl and an sft stream (about 160 MB each, in results/tmp/, deleted at
# the end even on failure), replays both in bf16 under every policy with the permuted
# null model, prints the tables and writes them with CSV and SVG plots to results/demo/.
demo: build
	@set -e; rm -rf $(DEMO_TMP); mkdir -p $(DEMO_TMP); trap 'rm -rf $(DEMO_TMP)' EXIT; \
	for profile in rl sft; do \
	  echo "== $$profile: preclab synth --shape $(DEMO_SHAPES) --steps $(DEMO_STEPS) --lr $(DEMO_LR) --profile $$profile"; \
	  $(PRECLAB) synth -o $(DEMO_TMP)/$$profile.stream --shape $(DEMO_SHAPES) --steps $(DEMO_STEPS) \
	    --lr $(DEMO_LR) --profile $$profile --quiet; \
	  mkdir -p $(DEMO_DIR)/$$profile; \
	  $(PRECLAB) replay $(DEMO_TMP)/$$profile.stream --dtype bf16 --null permute --spectral --k 16 --rank 16 --force \
	    --csv $(DEMO_DIR)/$$profile/replay.csv --plots $(DEMO_DIR)/$$profile > $(DEMO_TMP)/$$profile.txt; \
	  cp $(DEMO_TMP)/$$profile.txt $(DEMO_DIR)/$$profile/tables.txt; \
	  cat $(DEMO_DIR)/$$profile/tables.txt; echo; \
	done; \
	echo "wrote $(DEMO_DIR)/rl and $(DEMO_DIR)/sft (tables.txt, replay.csv, SVG plots); next: make -j2 sweep"

# Every experiment, in parallel with `make -j2 sweep`.
sweep: $(addprefix sweep-,$(EXPERIMENTS))

sweep-%: build
	@test -f experiments/$*.json || { echo "no experiment experiments/$*.json (have: $(EXPERIMENTS))"; exit 2; }
	$(PRECLAB) sweep experiments/$*.json --out results/$* --force

# The bench is built for AVX2 (`-target-cpu haswell`, in its own build directory) when
# the host has it; `make bench BENCH_CPU=` builds the portable x86-64 baseline instead.
# The replay suite prints a result fingerprint that must be the same for both builds.
BENCH_CPU  ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo haswell)
BENCH_DIR  := $(if $(BENCH_CPU),.build/cpu-$(BENCH_CPU),.build)
bench: deps
	$(SWIFT) build -c release --product preclab-bench $(if $(BENCH_CPU),--scratch-path $(BENCH_DIR) -Xswiftc -target-cpu -Xswiftc $(BENCH_CPU))
	$(BENCH_DIR)/release/preclab-bench

# Fuzzes the stream, safetensors, npy/npz and JSON parsers with libFuzzer for
# FUZZ_SECONDS; new inputs go to fuzz-out/corpus, crashes to fuzz-out/crash-*.
fuzz:
	@mkdir -p fuzz-out/corpus
	fuzz/build.sh >/dev/null
	.build/fuzz/fuzz-files -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	  -artifact_prefix=fuzz-out/ fuzz-out/corpus fuzz/corpus

clean:
	rm -rf .build
