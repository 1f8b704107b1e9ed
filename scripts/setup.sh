#!/bin/sh
# Prepares a Debian machine to build, run and test tsbal from this checkout:
# Debian packages (the daemons the tests compare against) and the npm dependencies.
# Safe to run again. Needs root for apt; without root it only checks and runs npm ci.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="iproute2 iputils-arping curl ca-certificates procps psmisc net-tools python3 \
perlbal heartbeat haproxy nginx apache2 wrk hyperfine"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  node_ok=0
  if command -v node >/dev/null 2>&1 && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
    node_ok=1
  elif ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm" # bootstrap only: npm ci then provides Node 22 in node_modules/.bin
  fi
  if [ -n "$missing" ]; then
    echo "setup: apt-get install$missing"
    # The daemons are started by the tests themselves, never by their packages' init scripts.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  fi
  # Package postinst scripts may still have started daemons on machines with a real init; stop them.
  for svc in apache2 nginx haproxy heartbeat perlbal; do
    pkill -x "$svc" 2>/dev/null || true
  done
  pkill -f /usr/libexec/heartbeat/heartbeat 2>/dev/null || true
  : "$node_ok"
else
  echo "setup: not root or no apt-get; skipping Debian packages (tests that need them will fail)"
fi

echo "setup: npm ci"
npm ci --no-audit --no-fund
echo "setup: done"
