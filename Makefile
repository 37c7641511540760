# The README's two commands: `make run` and `make test`. Both install what is missing
# (Debian packages), configure a Release build with Ninja into build/, and build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
DEB_PACKAGES := g++ cmake ninja-build pkg-config ccache capnproto libcapnp-dev \
	libboost-dev libxxhash-dev libssl-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev \
	nlohmann-json3-dev libboost-program-options-dev dpkg-dev libspdlog-dev libfmt-dev libgoogle-perftools-dev

.PHONY: all deps configure build run test asan tsan bench compare compare-deps package clean

all: build

# The peers of `make compare` (bench/compare/compare.sh): PostgreSQL with pgbench, and Redis
# with redis-benchmark. Not needed by `make test` (its smoke test skips without them).
COMPARE_PACKAGES := postgresql postgresql-contrib redis-server redis-tools
# Options for the harness, e.g. make compare COMPARE_ARGS="--quick --only redis".
COMPARE_ARGS ?=

# $(call install_missing,PACKAGES): dpkg-query answers for installed packages only; apt-get
# runs just when something is missing.
define install_missing
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

run: build
	./$(BUILD_DIR)/bin/esd --data-dir ./data

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j2

# Every test against a build with AddressSanitizer and UndefinedBehaviorSanitizer
# (ESD_SANITIZE) in build-asan/. Not part of `make test`: building it takes ~40 minutes of
# CPU. ASAN_TESTS narrows what runs (a ctest -R regex), e.g. make asan ASAN_TESTS=Subscriptions.
# Leaks are not checked: capnp and kj keep some of their memory until exit.
ASAN_DIR ?= build-asan
ASAN_TESTS ?= .

asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESD_SANITIZE=ON
	cmake --build $(ASAN_DIR)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure --timeout 1800 -j2 -R '$(ASAN_TESTS)'

# The storage and domain tests against a build with ThreadSanitizer (ESD_SANITIZE_THREAD) in
# build-tsan/: the writer, the index job, the zero filler and readers share the store, and
# order commands from several threads share the order cache, through std threads and locks,
# which TSan checks. Not the daemon's tests: Debian's kj is not
# instrumented and its cross-thread hand-offs would read as races (CMakeLists.txt).
# TSAN_TESTS chooses what runs (a gtest filter, for both binaries), e.g. make tsan
# TSAN_TESTS='Writer.*'; by default all but the fault-injection sweeps, which take ~5 minutes
# each under TSan (the rest: ~20 minutes).
TSAN_DIR ?= build-tsan
TSAN_TESTS ?= -FaultInjection/FaultInjectionSweep.*

tsan: deps
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESD_SANITIZE_THREAD=ON
	cmake --build $(TSAN_DIR) --target storage_tests domain_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(TSAN_DIR)/bin/storage_tests --gtest_filter='$(TSAN_TESTS)'
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(TSAN_DIR)/bin/domain_tests --gtest_filter='$(TSAN_TESTS)'

# The Debian package (CPack, packaging/CMakeLists.txt): $(BUILD_DIR)/esd_<version>_<arch>.deb.
# dpkg-shlibdeps (dpkg-dev) works out its library dependencies.
package: build
	cd $(BUILD_DIR) && cpack -G DEB

bench: build
	./$(BUILD_DIR)/bin/storage_append_bench
	./$(BUILD_DIR)/bin/storage_read_bench
	./$(BUILD_DIR)/bin/storage_open_bench

# esd beside PostgreSQL and Redis, durable, one table (docs/benchmarks.md).
compare-deps:
	$(call install_missing,$(COMPARE_PACKAGES))

# Builds only what it runs (esd, esbench): the tests are not needed for it.
compare: configure compare-deps
	cmake --build $(BUILD_DIR) --target esd esbench
	bench/compare/compare.sh --build-dir $(BUILD_DIR) $(COMPARE_ARGS)

clean:
	rm -rf $(BUILD_DIR)
