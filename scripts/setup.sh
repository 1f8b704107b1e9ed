#!/bin/sh
# Prepares a Debian machine to build, run and test tsbal from this checkout:
# Debian packages (the daemons the tests compare against; qemu-user and the arm64 C/C++ runtime, which run the
# arm64 binary in the tests; wget and shellcheck for the install.sh tests; nftables, with which the HA tests drop chosen packets;
# chromium, the headless browser that renders the management status page in its test; frr for the anycast/ECMP lab;
# nghttp2-client (nghttp, h2load) for the HTTP/2 tests and bench; ab, valgrind, strace and perf for the benches in
# bench/) and the npm dependencies.
# Safe to run again. Needs root for apt; without root it only checks and runs npm ci.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="iproute2 iputils-arping inetutils-ping curl ca-certificates procps psmisc net-tools python3 \
perlbal heartbeat haproxy nginx apache2 wrk hyperfine \
nftables tshark binutils wget shellcheck chromium frr nghttp2-client qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross systemd \
apache2-utils valgrind strace linux-perf"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  # npm bootstraps `npm ci`, which then provides Node 22 (node_modules/.bin) for the build.
  if ! command -v npm >/dev/null 2>&1; then
    if command -v node >/dev/null 2>&1; then missing="$missing npm"; else missing="$missing nodejs npm"; fi
  fi
  if [ -n "$missing" ]; then
    echo "setup: apt-get install$missing"
    # The daemons are started by the tests themselves, never by their packages' init scripts.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
    if [ "$own_policy" = 1 ]; then
      rm -f /usr/sbin/policy-rc.d
      trap - EXIT
    fi
    # A package may still have started its daemon (a postinst that ignores policy-rc.d). Stop only what the
    # packages' own init scripts started, by their pid files: never by name, since tests in other checkouts on
    # this machine run these same daemons.
    for pidfile in /run/apache2/apache2.pid /run/nginx.pid /run/haproxy.pid /run/heartbeat.pid /run/perlbal.pid; do
      if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
  fi
else
  echo "setup: not root or no apt-get; skipping Debian packages (tests that need them will fail)"
fi

echo "setup: npm ci"
npm ci --no-audit --no-fund

# The tests run the bundle on the oldest Node tsbal supports, 20: the system's /usr/bin/node when it is Node 20,
# else (Debian 12's nodejs is 18) node-linux-<arch>@20 from the npm registry, unpacked into node_modules/.cache.
if ! /usr/bin/node --version 2>/dev/null | grep -q '^v20\.'; then
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  dir=node_modules/.cache/node20
  echo "setup: /usr/bin/node is not Node 20; fetching node-linux-$arch@20 into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  tarball=$(cd "$dir" && npm pack "node-linux-$arch@20" --silent)
  tar -xzf "$dir/$tarball" -C "$dir" --strip-components=1 package/bin/node
  rm -f "$dir/$tarball"
  "$dir/bin/node" --version
fi
# Net::Netmask for real Perlbal's `ACCESS ... netmask` rules in the AccessControl differential tests, unpacked where
# only those tests look (their Perlbal gets it on PERL5LIB): the system Perlbal stays as Debian installs it, without
# Net::Netmask, which other tests rely on.
nm=node_modules/.cache/perl5
if [ ! -f "$nm/Net/Netmask.pm" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  # apt-get download needs package lists, which a machine that already had every package may not have fetched.
  if (cd "$tmp" && { apt-get download -qq libnet-netmask-perl 2>/dev/null || { apt-get update -qq && apt-get download -qq libnet-netmask-perl; }; }) &&
    dpkg -x "$tmp"/libnet-netmask-perl_*.deb "$tmp/x"; then
    mkdir -p "$nm" && cp -r "$tmp/x/usr/share/perl5/Net" "$nm/"
    echo "setup: Net::Netmask unpacked into $nm"
  else
    echo "setup: could not fetch libnet-netmask-perl; the Perlbal netmask differential tests will be skipped"
  fi
  rm -rf "$tmp"
fi
echo "setup: done"
