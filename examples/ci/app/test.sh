#!/bin/sh
# Tests the build (dist/, the build job's artifacts). It needs a registry token, a secret: the
# command gets its value, and every log shows it as ***. Like a flaky test, it fails on its
# first run in a fresh sandbox, so that the CI step's re-run has something to do.
set -e
[ -n "${DEMO_TOKEN:-}" ] || { echo "error: DEMO_TOKEN is not set" >&2; exit 1; }
echo "logging in to the test registry with $DEMO_TOKEN"
if [ ! -e .warmed-up ]; then
  touch .warmed-up
  echo "error: the test server did not answer in time (flaky)" >&2
  exit 1
fi
out=$(node dist/hello.js)
[ "$out" = "hello from the build" ] || { echo "error: unexpected output: $out" >&2; exit 1; }
echo "1 test passed"
