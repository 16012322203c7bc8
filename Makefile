# confab: a thin wrapper around CMake. The two commands most people need:
#   make run-all   build, then run Redis, brokers and gateways in the foreground
#   make test      build, then run every test (unit, integration, end to end)

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all build deps run-all test test-asan fuzz soak bench clean

all: build

deps:
	@scripts/deps.sh ensure

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh ensure
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	@scripts/deps.sh ensure
	cmake --build $(BUILD) -j$(JOBS)

run-all: build
	@BUILD_DIR=$(BUILD) scripts/run-all.sh

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@scripts/deps.sh ensure
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCONFAB_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 600

# libFuzzer harnesses (tests/fuzz, docs/fuzzing.md), built with clang-14 under
# ASan + UBSan, each run for FUZZ_SECONDS from its seed corpus. Fails on any
# crash, leak, UB or timeout and prints the reproducer's path.
fuzz:
	@scripts/deps.sh ensure
	CC=clang-14 cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFAB_FUZZ=ON \
	  -DCONFAB_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target confab_fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BUILD)

# Mixed traffic with periodic faults for DURATION, then an account of every
# delivery, latency and RSS over time (docs/soak.md). Not part of `make test`.
#   make soak DURATION=10m SOAK_ARGS="--clients 200 --rooms 20 --rate 100"
DURATION  ?= 10m
SOAK_ARGS ?=
soak: build
	@BUILD_DIR=$(BUILD) scripts/soak.sh --duration $(DURATION) $(SOAK_ARGS)

# Every benchmark scenario against confab and bench/baseline, with ratios
# (docs/benchmarks.md). Not part of `make test`. A smoke run in ~2 minutes:
#   make bench BENCH_ARGS=--quick
BENCH_ARGS ?=
bench: build
	scripts/bench.py --build $(BUILD) $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
