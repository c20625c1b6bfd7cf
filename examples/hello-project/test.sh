#!/bin/sh
# Runs what the build made and checks its output.
set -e
out=$(./dist/run.sh)
[ "$out" = "hello from the build" ] || { echo "unexpected output: $out" >&2; exit 1; }
echo "1 test passed"
