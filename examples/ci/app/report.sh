#!/bin/sh
# Runs whatever the tests' outcome (when: always): a report of what was built.
set -e
{ echo "build report"; find dist -type f | sort; } > report.txt
cat report.txt
