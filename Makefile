# Thin wrapper over CMake. `make run` and `make test` do all set-up on Debian 12.
BUILD_RELEASE := build/release
BUILD_TEST := build/asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DATA ?= ./data

.PHONY: all deps release run test bench fuzz format clean

all: release

deps:
	@scripts/install-deps.sh build

release: deps
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)

run: release
	$(BUILD_RELEASE)/strata serve --data $(DATA)

test:
	@scripts/install-deps.sh test
	@cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON -DSTRATA_WERROR=ON >/dev/null
	@cmake --build $(BUILD_TEST) -j $(JOBS)
	@cd $(BUILD_TEST) && ctest --output-on-failure -j $(JOBS)

bench:
	@scripts/install-deps.sh bench
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)
	@bench/run.sh $(BUILD_RELEASE)

fuzz:
	@scripts/install-deps.sh fuzz
	@CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DSTRATA_FUZZ=ON >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

format:
	@find storage query ingest server tests bench -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf build
