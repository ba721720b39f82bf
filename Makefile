# The familiar verbs. CMake builds everything (see CMakeLists.txt); this file
# only names the usual entry points.
#   make run    build what is missing and start the gateway on its embedded
#               default (local model server, no Redis needed)
#   make test   build with ASan/UBSan and run every test

BUILD      ?= build
DEV_BUILD  ?= build-dev
TEST_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PY         ?= /usr/bin/python3
SOURCES     = $(shell git ls-files '*.c' '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps build run dev test test-unit test-python test-integration fuzz fmt lint clean bench

all: build

deps:
	@./scripts/deps.sh

# Link-time optimised and profile-guided (scripts/build.sh: an instrumented
# build is trained for ~12 s on loopback, then rebuilt with the profile; the
# training reruns only when a source changed). PGO=0 make build: no training.
# Configured on every build: a build/ left configured as Debug by hand would
# otherwise give make run and make bench an unoptimised gateway.
build:
	JOBS=$(JOBS) ./scripts/build.sh $(BUILD) ./ai-gateway

# Starts the gateway on its embedded default: it spawns and supervises the
# local model server (python/), which prepares its model on first run.
run: deps build
	./ai-gateway

# Debug build with ASan/UBSan, in the foreground.
dev: deps
	cmake -S . -B $(DEV_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON
	cmake --build $(DEV_BUILD) -j $(JOBS)
	cp $(DEV_BUILD)/ai-gateway ./ai-gateway-dev
	LOG_LEVEL=$${LOG_LEVEL:-debug} ./ai-gateway-dev

$(TEST_BUILD)/Makefile:
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON

test: deps $(TEST_BUILD)/Makefile
	cmake --build $(TEST_BUILD) -j $(JOBS)
	$(MAKE) --no-print-directory test-unit test-python test-integration

test-unit:
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

test-python:
	cd python && AIGW_STUBS=$(CURDIR)/$(TEST_BUILD)/gen/python $(PY) -m pytest -q tests

test-integration:
	GW_BIN=$(CURDIR)/$(TEST_BUILD)/ai-gateway AIGW_STUBS=$(CURDIR)/$(TEST_BUILD)/gen/python \
	  $(PY) -m pytest -q tests/integration

# libFuzzer targets, each run for FUZZ_SECONDS (clang).
FUZZ_SECONDS ?= 30
fuzz:
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DGW_FUZZ=ON -DGW_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS)
	./scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

fmt:
	clang-format -i $(SOURCES)

lint:
	clang-format --dry-run --Werror $(SOURCES)
	# Suppressed: cppcheck 2.10 reads designated initialisers of grpc_op as
	# uninitialised (legacyUninitvar), cannot follow format strings passed
	# through a helper (wrongPrintfScanfArgNum), and flags a NULL check before
	# pointer arithmetic that is deliberate (nullPointerArithmeticRedundantCheck).
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem --suppress=legacyUninitvar \
	  --suppress=wrongPrintfScanfArgNum --suppress=nullPointerArithmeticRedundantCheck \
	  -I server -I . server transcoder

# Gateway vs direct, nginx and Portkey side by side -> tests/bench/RESULTS.md (a few
# minutes; knobs: BENCH_DUR, BENCH_ROUNDS, BENCH_QUICK=1, GW_BIN=<a built gateway>).
bench:
	@if [ -z "$(GW_BIN)" ]; then $(MAKE) --no-print-directory build; fi
	$(MAKE) --no-print-directory -C tests/bench
	GW_BIN=$${GW_BIN:-$(CURDIR)/ai-gateway} ./tests/bench/run.sh

clean:
	rm -rf build build-* ai-gateway ai-gateway-dev ai-gateway-lto
