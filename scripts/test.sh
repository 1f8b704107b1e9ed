#!/usr/bin/env bash
# Builds tsbal, runs the whole test suite with bun:test, and ends with one line: "N passed, N failed".
# Extra arguments go to `bun test` (a file or a -t filter).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The bundle, both Node SEA binaries and the Bun binary: tests run all of them. Incremental, so this costs well
# under a second when only tests changed, and ~10 s after a source change (pkg rebakes two 120 MB binaries).
if ! node build/build.ts || ! node build/build-bun.ts; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# bunfig.toml's [test] timeout is not read by this bun (1.4.5): tests ran with bun's 5 s default. Pass it here.
bun test --timeout 20000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

passed=$(awk '/^ *[0-9]+ pass$/ {print $1}' "$log" | tail -1)
failed=$(awk '/^ *[0-9]+ fail$/ {print $1}' "$log" | tail -1)
passed=${passed:-0}
failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # bun itself failed (crash, no tests found, unhandled error): count it
fi
if [ "$failed" -ne 0 ]; then
  # Each failure again, with what the test printed and bun's expect diff, right above the count: a CI log shown by
  # its tail then still tells why (bun's own summary names the failed tests only).
  echo
  echo "failures in detail (the last 40 lines before each):"
  awk '
    /^[0-9]+ tests? failed:$/ { exit }
    /^\((pass|skip|todo)\) / || /^test\/.*:$/ { n = 0; next }
    /^\(fail\) / {
      if (shown++ < 5) { print "----"; s = n > 40 ? n - 40 : 0; for (i = s; i < n; i++) print buf[i]; print }
      n = 0; next
    }
    { buf[n++] = $0 }
  ' "$log"
  echo "----"
fi
echo "$passed passed, $failed failed"
exit "$rc"
