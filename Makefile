# Thin wrapper over CMake: make, make check, make run.  Each target first
# installs missing Debian packages (scripts/deps.sh).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build asan check check-unit run bench format format-check fuzz clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DATREST_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The full suite on the release build, then the unit tests under ASan+UBSan.
check: build asan
	@sh scripts/check.sh $(BUILD) $(ASAN_BUILD)

run: build
	@sh scripts/run.sh $(BUILD)

bench: build
	@$(BUILD)/atrest bench

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DATREST_FUZZ=ON -DATREST_TESTS=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
