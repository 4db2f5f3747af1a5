# Thin wrapper over CMake/CTest. `make run` and `make test` each work on a fresh
# machine: they install what is missing (scripts/deps.sh), build, then act.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=

.PHONY: all deps deps-test build run test test-asan bench fuzz soak format clean package install

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/rtgw serve --dev

# The Debian package (packaging/): build/rtgw_<version>-1_<arch>.deb.
package: build
	cd $(BUILD) && cpack -G DEB

# Installs into PREFIX (default /usr/local), or DESTDIR/PREFIX for staging.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

test: deps-test build
	@scripts/ctest-run.sh $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DRT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)"

bench: build
	@if [ -x bench/run.sh ]; then bench/run.sh $(BUILD); else ./$(BUILD)/bench/bench_tokens; fi

# 10-minute soak: 2 000 subscribers, random disconnects and resumes; zero loss
# and zero duplicates, RSS slope reported (tests/hardening/soak.mjs, env knobs there).
soak: deps-test build
	ulimit -n 8192 && RTGW_BIN=$(BUILD)/rtgw node tests/hardening/soak.mjs

fuzz:
	RT_FUZZ_DEPS=1 scripts/deps.sh build
	CC=clang cmake -S . -B build-fuzz -DRT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS)

format:  # formats every tracked C file; tests/style checks it (style.clang_format)
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
