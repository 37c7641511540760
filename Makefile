# The README's two commands: `make run` and `make test`. Both install what is missing
# (Debian packages), configure a Release build with Ninja into build/, and build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
DEB_PACKAGES := g++ cmake ninja-build pkg-config ccache capnproto libcapnp-dev \
	libboost-dev libxxhash-dev libssl-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev \
	nlohmann-json3-dev libboost-program-options-dev dpkg-dev libspdlog-dev libfmt-dev libjemalloc-dev

.PHONY: all deps configure build run test bench package clean

all: build

# dpkg-query answers for installed packages only; apt-get runs just when something is missing.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

run: build
	./$(BUILD_DIR)/bin/esd --data-dir ./data

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j2

# The Debian package (CPack, packaging/CMakeLists.txt): $(BUILD_DIR)/esd_<version>_<arch>.deb.
# dpkg-shlibdeps (dpkg-dev) works out its library dependencies.
package: build
	cd $(BUILD_DIR) && cpack -G DEB

bench: build
	./$(BUILD_DIR)/bin/storage_append_bench
	./$(BUILD_DIR)/bin/storage_read_bench
	./$(BUILD_DIR)/bin/storage_open_bench

clean:
	rm -rf $(BUILD_DIR)
