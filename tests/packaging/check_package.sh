#!/usr/bin/env bash
# Installs lstp as a user would and checks what lands where:
#  1. `cmake --install` into a staging root: the binaries, the man pages (every
#     config key documented, rendered without a warning), the example
#     configurations (no keys among them), the systemd units;
#  2. `cpack -G DEB`: the Debian package installs (dpkg -i), the programs run
#     from /usr/bin, `man` finds their pages, `systemd-analyze verify` passes
#     on an instance of each unit, and it removes cleanly (dpkg --purge)
#     leaving nothing of its own behind.
# Needs root for dpkg. Usage: check_package.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d /tmp/lstp-package.XXXXXX)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then dpkg --purge lstp >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check_package: $*" >&2; exit 1; }

# (Outputs are taken whole before grep looks: `cmd | grep -q` fails under
# pipefail when grep stops reading early and cmd gets SIGPIPE.)
status=$(dpkg-query -W -f='${Status}' lstp 2>/dev/null || true)
if [[ "$status" == *"ok installed"* ]]; then
  fail "a package named lstp is installed already: not touching it"
fi

# 1. cmake --install
DESTDIR=$work/root cmake --install "$build" --prefix /usr >/dev/null
root=$work/root
for f in usr/bin/endproxy usr/bin/middleproxy usr/share/man/man1/endproxy.1 usr/share/man/man1/middleproxy.1 \
         usr/lib/systemd/system/lstp-end@.service usr/lib/systemd/system/lstp-middle@.service \
         usr/share/doc/lstp/examples/quickstart/client.yaml usr/share/doc/lstp/examples/quickstart/middle.yaml \
         usr/share/doc/lstp/README.md usr/share/doc/lstp/PROTOCOL.md; do
  [ -f "$root/$f" ] || fail "cmake --install did not install /$f"
done
grep -q '^ExecStart=/usr/bin/endproxy -c /etc/lstp/%i.yaml$' "$root/usr/lib/systemd/system/lstp-end@.service" ||
  fail "lstp-end@.service does not run /usr/bin/endproxy"
grep -q '^ExecStart=/usr/bin/middleproxy -c /etc/lstp/%i.yaml$' "$root/usr/lib/systemd/system/lstp-middle@.service" ||
  fail "lstp-middle@.service does not run /usr/bin/middleproxy"
if find "$root/usr/share/doc/lstp/examples" -type f ! -name '*.yaml' ! -name '*.md' | grep .; then
  fail "files other than YAML and notes among the examples (keys?)"
fi
for page in endproxy middleproxy; do
  warnings=$(groff -man -ww -z "$root/usr/share/man/man1/$page.1" 2>&1 || true)
  [ -z "$warnings" ] || fail "$page.1 renders with warnings: $warnings"
done
# Every key the configuration readers accept is in its program's page.
keys_of() { grep -ho '"[a-z_]*"' "$@" | tr -d '"' | sort -u; }
check_keys() {
  local page=$1; shift
  local missing=""
  for k in $(sed -n '/section\|sub_section/,/});/p' "$@" | keys_of /dev/stdin); do
    grep -qw -- "$k" "$root/usr/share/man/man1/$page.1" || missing="$missing $k"
  done
  [ -z "$missing" ] || fail "$page.1 does not document:$missing"
}
check_keys endproxy "$src/config/end_config.cpp"
check_keys middleproxy "$src/config/middle_config.cpp"
for k in listen token_file token_env; do
  for page in endproxy middleproxy; do grep -qw "$k" "$root/usr/share/man/man1/$page.1" || fail "$page.1: admin.$k"; done
done
version=$("$root/usr/bin/endproxy" --version)
[[ "$version" == "endproxy (lstp) "* ]] || fail "endproxy --version says: $version"

# 2. The Debian package.
(cd "$build" && cpack -G DEB -B "$work/deb" >/dev/null) || fail "cpack -G DEB failed"
deb=$(ls "$work"/deb/lstp_*.deb)
info=$(dpkg-deb --info "$deb")
[[ "$info" == *"Depends: "*libbotan* ]] || fail "the package does not depend on Botan: $info"
installed=1
dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"
[ "$(/usr/bin/endproxy --version)" = "endproxy (lstp) $(dpkg-query -W -f='${Version}' lstp)" ] ||
  fail "installed endproxy --version does not match the package version"
/usr/bin/middleproxy --version >/dev/null
man -w endproxy >/dev/null || fail "man does not find endproxy(1)"
man -w middleproxy >/dev/null || fail "man does not find middleproxy(1)"
[ -d /etc/lstp ] || fail "the package did not make /etc/lstp"
mkdir -p "$work/units"
for unit in lstp-end lstp-middle; do
  cp "/usr/lib/systemd/system/$unit@.service" "$work/units/$unit@demo.service"
  out=$(systemd-analyze verify "$work/units/$unit@demo.service" 2>&1) || fail "systemd-analyze verify $unit@demo: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $unit@demo warns: $out"
done
files=$(dpkg -L lstp | grep -v '^/\.$')
dpkg --purge lstp >/dev/null || fail "dpkg --purge failed"
installed=0
for f in $files; do
  if [ -f "$f" ]; then fail "$f is still there after dpkg --purge"; fi
done
echo "check_package: cmake --install, the man pages, the units and the Debian package are right"
