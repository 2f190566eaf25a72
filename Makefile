# preclab: `make demo` runs the main job on built-in data, `make test` runs the tests.
# Both install what they need on a fresh Debian machine (LAPACK/OpenBLAS via apt when
# running as root; otherwise they print the exact command to run).

SWIFT      ?= swift
PYTHON     ?= python3
RELEASE    := .build/release
PRECLAB    := $(RELEASE)/preclab
APT_PKGS   := libopenblas-dev liblapacke-dev
FUZZ_SECONDS ?= 60

.PHONY: all build test test-swift test-python test-exhaustive demo bench fuzz clean deps

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

demo: build
	$(PRECLAB) formats
	$(PRECLAB) round 1 1.00390625 1.01171875 3.14159265 -0.0 1e-40 nan --dtype bf16

bench: deps
	$(SWIFT) build -c release --product preclab-bench
	$(RELEASE)/preclab-bench

# Fuzzes the stream, safetensors, npy/npz and JSON parsers with libFuzzer for
# FUZZ_SECONDS; new inputs go to fuzz-out/corpus, crashes to fuzz-out/crash-*.
fuzz:
	@mkdir -p fuzz-out/corpus
	fuzz/build.sh >/dev/null
	.build/fuzz/fuzz-files -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	  -artifact_prefix=fuzz-out/ fuzz-out/corpus fuzz/corpus

clean:
	rm -rf .build
