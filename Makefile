# Thin wrapper over CMake: make, make check, make check-quick, make run.
# Each target first installs missing Debian packages (scripts/deps.sh).
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc)

.PHONY: all deps build asan tsan check check-quick run tour bench install deb format format-check fuzz clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DATREST_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

tsan: deps
	@CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATREST_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)

# Every test on the release build (real services included), then the unit
# tests again under ASan+UBSan and under TSan.
check: build asan tsan
	@sh scripts/check.sh $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)

# The edit-compile-test loop: release build, no services, no sanitizers.
check-quick: build
	@sh scripts/check.sh --quick $(BUILD)

# The server on 127.0.0.1 with a development store and keys (Ctrl-C stops).
run: build
	@sh scripts/run.sh $(BUILD)

# A tour of the command line on a temporary store.
tour: build
	@sh scripts/tour.sh $(BUILD)

bench: build
	@$(BUILD)/atrest-bench

# The CLI, atrest-bench, libatrest (shared and static), headers, atrest.pc,
# the CMake package, man pages and bash/zsh completions under PREFIX
# (DESTDIR for staging).
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian packages atrest and libatrest-dev, in the parent directory.
deb: deps
	@sh scripts/deb.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DATREST_FUZZ=ON -DATREST_TESTS=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz
