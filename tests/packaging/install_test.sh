#!/bin/bash
# cmake --install into a temporary prefix; then the README's "From C++" example (its CMake
# and C++ blocks, as written there) is configured and built out of tree with find_package(esd)
# against that prefix, and again with `pkg-config --cflags --libs esd`, and both binaries run
# against the installed esd on a free port.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1 SRC=$2
if [ "${ESD_SANITIZED:-0}" = 1 ]; then
  echo "skipped: a sanitized build (make asan) installs instrumented libraries that a plain program cannot link"
  exit 77
fi
source "$(dirname "$0")/lib.sh"

P=$T/prefix
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" || { cat "$T/install.log"; fail "cmake --install"; }
for f in bin/esd bin/esctl bin/esbench include/esd/client/client.h include/esd/protocol/esd.capnp.h \
         share/esd/schema/esd.capnp share/esd/schema/orders.capnp lib/libesd_client.a lib/libesd_protocol.a \
         lib/cmake/esd/esdConfig.cmake lib/cmake/esd/esdConfigVersion.cmake lib/cmake/esd/esdTargets.cmake \
         lib/pkgconfig/esd.pc; do
  [ -e "$P/$f" ] || fail "$f is not installed"
done
# Nothing outside the prefix: the unit and /etc/esd/esd.conf are only in the package.
OUTSIDE=$(grep -E '^-- (Installing|Up-to-date): ' "$T/install.log" | grep -v -- ": $P/" || true)
[ -z "$OUTSIDE" ] || fail "a plain install wrote outside its prefix: $OUTSIDE"
grep -q "Installing: $P/bin/esd\$" "$T/install.log" || fail "the install log does not say it installed esd"
"$P/bin/esd" --version | grep -Eq '^esd [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{7,}|unknown)\)$' || fail "esd --version"
"$P/bin/esctl" --version | grep -Eq '^esctl [0-9]' || fail "esctl --version"

# The README's section "### From C++": its ```cmake block is the CMakeLists.txt, its ```c++
# block main.cc.
E=$T/example
mkdir -p "$E"
block() {  # block LANG: the first fenced block of LANG in the section
  awk -v lang="$1" '
    /^### / { in_section = ($0 == "### From C++") }
    in_section && $0 == "```" lang { copying = 1; next }
    copying && /^```/ { exit }
    copying { print }' "$SRC/README.md"
}
block cmake >"$E/CMakeLists.txt"
block 'c++' >"$E/main.cc"
grep -q 'find_package(esd' "$E/CMakeLists.txt" || fail "README's From C++ section has no cmake block with find_package(esd)"
grep -q 'int main' "$E/main.cc" || fail "README's From C++ section has no c++ block with main"

cmake -S "$E" -B "$E/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P" >"$T/example-configure.log" 2>&1 ||
  { cat "$T/example-configure.log"; fail "configuring the example with find_package(esd)"; }
cmake --build "$E/build" >"$T/example-build.log" 2>&1 || { cat "$T/example-build.log"; fail "building the example"; }
APP=$(find "$E/build" -maxdepth 1 -type f -executable -name 'cart*' | head -1)
[ -n "$APP" ] || fail "the example's executable is not in $E/build"

export PKG_CONFIG_PATH=$P/lib/pkgconfig
FLAGS=$(pkg-config --cflags --libs esd) || fail "pkg-config --cflags --libs esd"
g++ -std=c++20 "$E/main.cc" -o "$T/cart-pc" $FLAGS >"$T/pc-build.log" 2>&1 || { cat "$T/pc-build.log"; fail "building with pkg-config ($FLAGS)"; }
# The Appender (framed appends) is installed and links too.
printf '#include "client/appender.h"\nint main() { return &esd::client::Appender::Connect != nullptr ? 0 : 1; }\n' >"$E/appender.cc"
g++ -std=c++20 "$E/appender.cc" -o "$T/appender-pc" $FLAGS >"$T/appender-build.log" 2>&1 ||
  { cat "$T/appender-build.log"; fail "building against the installed client/appender.h"; }

# The installed esd on a free port; its ready line (read through a pipe) is the barrier.
start_esd "$P/bin/esd" --data-dir "$T/data" --listen 127.0.0.1:0 --http off
[[ $READY_LINE =~ rpc=([^ ]+) ]] || fail "esd's ready line has no rpc=: $READY_LINE"
ADDR=${BASH_REMATCH[1]}

OUT=$("$APP" "$ADDR") || fail "the example (find_package) failed: $OUT"
echo "find_package build: $OUT"
[[ $OUT == *"appended at position 0"*"cart-42 has 1 event(s)"*"caught up"* ]] || fail "unexpected output: $OUT"
OUT=$("$T/cart-pc" "$ADDR") || fail "the example (pkg-config) failed: $OUT"
echo "pkg-config build: $OUT"
[[ $OUT == *"wrong expected version"*"cart-42 has 1 event(s)"*"caught up"* ]] || fail "unexpected output: $OUT"

stop_esd
echo "PASS"
