#!/usr/bin/env bash
# A CI step: run the pipeline, and if it fails, run what failed (and what needs it) once more, as
# a new batch that takes the artifacts of the jobs that passed. Usage: ci-step.sh [pipeline] [out]
# From the CI system: ARTIFACT_SANDBOX_URL, ARTIFACT_SANDBOX_KEY and DEMO_TOKEN (secrets), and
# the run's ID (GITHUB_RUN_ID or CI_PIPELINE_ID). artifact-sandbox is the CLI (npm pack's package).
set -euo pipefail
PIPELINE=${1:-examples/ci/pipeline.yaml}
OUT=${2:-sandbox-artifacts}
RUN_ID=${GITHUB_RUN_ID:-${CI_PIPELINE_ID:-$(date +%s)}}
log=$(mktemp)
# The run's sandboxes go when the step ends (the cache stays: it is the tenant's).
trap 'rm -f "$log"; for s in app test; do artifact-sandbox rm "$s-$RUN_ID" > /dev/null || true; done' EXIT

# The secret's value lives in the CI system's store; jobs get it by name, masked as ***.
printf %s "$DEMO_TOKEN" | artifact-sandbox secrets set DEMO_TOKEN

status=0
artifact-sandbox pipeline run "$PIPELINE" --run-id "$RUN_ID" --logs --out "$OUT" | tee "$log" || status=$?
# Exit code 1: a job failed (2 and up: the file, the CLI or the service; nothing to run again).
if [ "$status" -eq 1 ]; then
  batch=$(sed -n 's/^batch \([0-9A-Z]\{26\}\) (.*/\1/p' "$log")
  echo "re-running what failed in batch $batch"
  artifact-sandbox pipeline rerun "$batch" --failed --logs --out "$OUT"
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
