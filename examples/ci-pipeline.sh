#!/usr/bin/env bash
# A CI pipeline against artifact-sandbox, with curl and jq: upload a source tree, build and test
# it in one sandbox, package the build's artifacts in another, and fetch the package as one
# archive. Usage: bash examples/ci-pipeline.sh [source dir] [output dir]
# ARTIFACT_SANDBOX_URL (default http://localhost:8787) and ARTIFACT_SANDBOX_KEY (when keys are required).
set -euo pipefail
API=${ARTIFACT_SANDBOX_URL:-http://localhost:8787}
SRC=${1:-examples/hello-project}
OUT=${2:-out}
auth=()
if [ -n "${ARTIFACT_SANDBOX_KEY:-}" ]; then auth=(-H "authorization: Bearer $ARTIFACT_SANDBOX_KEY"); fi
api() { curl -sSf "${auth[@]}" "$@"; }

# 1. Upload the source tree into sandbox ci-build (modes and symlinks kept).
tar czf /tmp/ci-src.tar.gz -C "$SRC" .
upload=$(api -X PUT --data-binary @/tmp/ci-src.tar.gz "$API/v1/sandboxes/ci-build/archive?path=/workspace/src" | jq -r .id)
api "$API/v1/jobs/$upload?wait=60" | jq -e '.status == "succeeded"' > /dev/null

# 2. Build, then test; package in another sandbox with the build's artifacts as its input.
batch=$(api -X POST "$API/v1/jobs" -H 'content-type: application/json' -d @- <<'JSON' | jq -r .batchId
{"jobs": [
  {"name": "build", "sandboxId": "ci-build",
   "job": {"type": "run", "cwd": "/workspace/src", "command": "./build.sh", "artifacts": ["dist/**"]}},
  {"name": "test", "sandboxId": "ci-build", "needs": ["build"],
   "job": {"type": "run", "cwd": "/workspace/src", "command": "./test.sh", "retries": 1}},
  {"name": "package", "sandboxId": "ci-package", "needs": ["test"],
   "job": {"type": "run", "command": "tar czf release.tar.gz -C in dist && echo packaged",
           "inputs": [{"from": "build", "artifacts": ["dist/**"], "path": "/workspace/in"}],
           "artifacts": ["release.tar.gz"]}}
]}
JSON
)

# 3. The build's log, live while it runs (it ends with the job's status).
build=$(api "$API/v1/batches/$batch" | jq -r '.jobs[] | select(.name == "build") | .id')
api -N "$API/v1/jobs/$build/logs" | sed -n 's/^data: //p'

# 4. Wait for the whole batch: it succeeds only if every job did.
status=queued
while [ "$status" = queued ] || [ "$status" = running ]; do
  status=$(api "$API/v1/batches/$batch?wait=30" | jq -r .status)
done
api "$API/v1/batches/$batch" | jq -r '.jobs[] | "\(.name): \(.status)"'
[ "$status" = succeeded ] || { echo "pipeline $status" >&2; exit 1; }

# 5. Everything the package job produced, as one archive.
package=$(api "$API/v1/batches/$batch" | jq -r '.jobs[] | select(.name == "package") | .id')
mkdir -p "$OUT"
api "$API/v1/jobs/$package/artifacts.tar.gz" | tar xzf - -C "$OUT"
echo "release in $OUT/release.tar.gz"
