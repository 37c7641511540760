#!/bin/bash
# `make package` in small: CPack builds the .deb into a temporary directory; dpkg-deb shows
# its files, control data, conffiles, maintainer scripts and unit, and the packaged esd runs
# from a scratch root with the packaged esd.conf. Skipped (exit 77) without dpkg-deb or
# dpkg-shlibdeps (apt-get install dpkg-dev).
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v $tool >/dev/null || { echo "SKIPPED: $tool is not installed (apt-get install dpkg-dev)"; exit 77; }
done
source "$(dirname "$0")/lib.sh"

cpack --config "$BUILD/CPackConfig.cmake" -B "$T/out" >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail "cpack"; }
DEB=$(ls "$T"/out/esd_*.deb)
[ -f "$DEB" ] || fail "no esd_*.deb in $(ls "$T/out")"
echo "built $(basename "$DEB")"

dpkg-deb -c "$DEB" >"$T/contents"
for f in ./usr/bin/esd ./usr/bin/esctl ./usr/bin/esbench ./etc/esd/esd.conf ./lib/systemd/system/esd.service \
         ./usr/include/esd/client/client.h ./usr/include/esd/protocol/esd.capnp.h ./usr/lib/libesd_client.a \
         ./usr/lib/cmake/esd/esdConfig.cmake ./usr/lib/pkgconfig/esd.pc ./usr/share/esd/schema/esd.capnp; do
  grep -Eq " $f\$" "$T/contents" || { cat "$T/contents"; fail "$f is not in the package"; }
done
grep -E ' \./usr/bin/esd$' "$T/contents" | grep -q '^-rwxr-xr-x root/root' || fail "esd is not an executable owned by root"
grep -E ' \./etc/esd/esd.conf$' "$T/contents" | grep -q '^-rw-r--r-- root/root' || fail "esd.conf permissions"

dpkg-deb -I "$DEB" >"$T/info"
grep -q '^ Package: esd$' "$T/info" || fail "Package: $(cat "$T/info")"
grep -Eq '^ Version: [0-9]+\.[0-9]+\.[0-9]+$' "$T/info" || fail "Version"
grep -Eq '^ Depends: .*adduser' "$T/info" || fail "Depends lacks adduser (postinst uses it)"
grep -Eq '^ Depends: .*libcapnp' "$T/info" || fail "Depends lacks libcapnp (shlibdeps)"
[ "$(dpkg-deb -I "$DEB" conffiles)" = "/etc/esd/esd.conf" ] || fail "conffiles: $(dpkg-deb -I "$DEB" conffiles)"
dpkg-deb -I "$DEB" postinst | grep -q 'adduser --system --group --home /var/lib/esd' || fail "postinst does not create the user esd"

dpkg-deb -x "$DEB" "$T/root"
UNIT=$T/root/lib/systemd/system/esd.service
for line in Type=notify User=esd StateDirectory=esd Restart=on-failure RestartPreventExitStatus=2 \
            'ExecStart=/usr/bin/esd --config /etc/esd/esd.conf' WantedBy=multi-user.target; do
  grep -qx "$line" "$UNIT" || fail "esd.service lacks '$line'"
done
grep -qx 'data-dir = /var/lib/esd' "$T/root/etc/esd/esd.conf" || fail "esd.conf does not set data-dir = /var/lib/esd"

# The packaged esd with the packaged config (the data directory and ports moved for a test).
"$T/root/usr/bin/esd" --version | grep -Eq '^esd [0-9]' || fail "packaged esd --version"
start_esd "$T/root/usr/bin/esd" --config "$T/root/etc/esd/esd.conf" --data-dir "$T/data" \
  --listen 127.0.0.1:0 --http 127.0.0.1:0
stop_esd
echo "PASS"
