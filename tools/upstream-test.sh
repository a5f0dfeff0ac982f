#!/usr/bin/env bash
# Runs upstream Istio's own tests of the packages we patch, inside the patched copy
# (out/istio), as the upstream module they are.
#
# Some upstream tests are timing-sensitive and fail now and then on a loaded machine,
# with or without our patches (e.g. pilot/pkg/xds TestWorkload/ondemand: 2 of 16 runs
# under `stress-ng --cpu 2` on stock upstream 1.31, 3 of 13 with our patches;
# docs/testing.md). A top-level test that fails is run again, alone, up to twice more; if
# it passes, it is reported as an upstream flake, loudly, and the run passes. A test
# failing three times, a build failure or a panic fails the run. Our own tests are never
# retried.
#
# Usage: tools/upstream-test.sh [go test flags...] -- packages...
set -uo pipefail
cd "$(dirname "$0")/../out/istio" || exit 1
flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
shift || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT

GOWORK=off go test "${flags[@]}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] && exit 0

# Failed top-level tests per package: "--- FAIL: TestX (..)" lines (no indent) come
# before their package's "FAIL<TAB>pkg<TAB>time" line.
failed=$(awk '
  /^--- FAIL: / { if (!seen[$3]++) tests = tests (tests ? "|" : "") $3; next }
  /^FAIL\t/ { print $2 " " tests; tests = ""; delete seen; next }
  /^(panic:|FAIL\t.*\[build failed\]|# )/ { print "BROKEN " $0 }
' "$log")
if [ -z "$failed" ] || grep -q '^BROKEN\|\[build failed\]\|\[setup failed\]' <<<"$failed"; then
  echo "tools/upstream-test.sh: upstream tests failed (not a test failure that can be retried)" >&2
  exit "$rc"
fi
flakes=()
while read -r pkg tests; do
  if [ -z "$tests" ]; then
    echo "tools/upstream-test.sh: $pkg failed without a failing test (panic or timeout?)" >&2
    exit "$rc"
  fi
  ok=
  for attempt in 2 3; do
    echo "tools/upstream-test.sh: attempt $attempt, alone: $pkg $tests" >&2
    if GOWORK=off go test "${flags[@]}" -count=1 -run "^($tests)\$" "$pkg"; then
      ok=1
      break
    fi
  done
  if [ -z "$ok" ]; then
    echo "tools/upstream-test.sh: $pkg $tests failed three times: a real failure" >&2
    exit 1
  fi
  flakes+=("$pkg $tests")
done <<<"$failed"
echo "================================================================================" >&2
for f in "${flakes[@]}"; do
  echo "UPSTREAM FLAKE (failed, then passed when run again alone): $f" >&2
done
echo "================================================================================" >&2
exit 0
