/**
 * Metrics from what is stored: GET /v1/metrics for the caller's tenant, GET /metrics in
 * Prometheus' format for the operator token, and the percentile estimate from histogram buckets.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bucketIndex, quantile } from "../../metrics/histogram";
import { MetricsView } from "../../schemas/metrics";
import { api, BASE, expectError, runJob, uniqueSandbox } from "./client";

const METRICS_TOKEN = "test-metrics-token-0123456789abcdef";

async function metrics(): Promise<MetricsView> {
  const response = await api("/v1/metrics");
  expect(response.status).toBe(200);
  return MetricsView.parse(await response.json());
}

/** The metrics once `ready` holds (a finished job is rolled up right after its final record is published). */
async function metricsWhen(ready: (figures: MetricsView) => boolean): Promise<MetricsView> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const figures = await metrics();
    if (ready(figures) || Date.now() > deadline) return figures;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("metrics", () => {
  it("counts finished jobs by status, with duration and queue-wait percentiles and artifact bytes, per window", async () => {
    const before = await metrics();
    const sandbox = uniqueSandbox("metrics");
    await runJob(sandbox, { type: "run", command: "head -c 1000 /dev/zero > out.bin && sleep 0.3", artifacts: ["out.bin"] });
    await runJob(sandbox, { type: "run", command: "exit 2" });
    const succeeded = (figures: MetricsView) => figures.windows["1h"].jobs.succeeded ?? 0;
    const failed = (figures: MetricsView) => figures.windows["1h"].jobs.failed ?? 0;
    const after = await metricsWhen((figures) => succeeded(figures) > succeeded(before) && failed(figures) > failed(before));
    for (const window of ["1h", "24h", "7d"] as const) {
      expect(after.windows[window].jobs.succeeded ?? 0).toBeGreaterThanOrEqual((before.windows[window].jobs.succeeded ?? 0) + 1);
      expect(after.windows[window].jobs.failed ?? 0).toBeGreaterThanOrEqual((before.windows[window].jobs.failed ?? 0) + 1);
      expect(after.windows[window].artifactBytes).toBeGreaterThanOrEqual(before.windows[window].artifactBytes + 1000);
    }
    const hour = after.windows["1h"];
    expect(hour.durationSeconds.count).toBeGreaterThanOrEqual(before.windows["1h"].durationSeconds.count + 2);
    expect(hour.durationSeconds.p50).not.toBeNull();
    expect(hour.durationSeconds.p99 ?? 0).toBeGreaterThanOrEqual(hour.durationSeconds.p50 ?? 0);
    expect(hour.queueWaitSeconds.count).toBeGreaterThanOrEqual(before.windows["1h"].queueWaitSeconds.count + 2);
    expect(after.artifactBytesStored).toBeGreaterThanOrEqual(before.artifactBytesStored + 1000);
    expect(after.liveSandboxes).toBeGreaterThanOrEqual(1);
    expect(after.runningSandboxes).toBeGreaterThanOrEqual(0);
  });

  it("serves every tenant in Prometheus' text format behind the operator token", async () => {
    await runJob(uniqueSandbox("prom"), { type: "run", command: "true" });
    await metricsWhen((figures) => (figures.windows["1h"].jobs.succeeded ?? 0) > 0);
    await expectError(await SELF.fetch(`${BASE}/metrics`), 401, "UNAUTHENTICATED");
    await expectError(await SELF.fetch(`${BASE}/metrics`, { headers: { authorization: "Bearer as_live_nope" } }), 401, "UNAUTHENTICATED");
    const response = await SELF.fetch(`${BASE}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await response.text();
    expect(text).toContain("# TYPE artifact_sandbox_jobs_total counter");
    expect(text).toMatch(/^artifact_sandbox_jobs_total\{tenant="local",status="succeeded"\} \d+$/m);
    expect(text).toContain("# TYPE artifact_sandbox_queue_wait_seconds histogram");
    expect(text).toMatch(/^artifact_sandbox_queue_wait_seconds_bucket\{tenant="local",le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^artifact_sandbox_job_duration_seconds_count\{tenant="local"\} \d+$/m);
    // Buckets are cumulative: never decreasing.
    const buckets = [...text.matchAll(/^artifact_sandbox_job_duration_seconds_bucket\{tenant="local",le="[^"]+"\} (\d+)$/gm)].map((m) =>
      Number(m[1]),
    );
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  });

  it("estimates percentiles inside histogram buckets as Prometheus does", () => {
    expect(quantile(0.5, new Map())).toBeNull();
    // 10 observations in (1, 2.5]: the median is halfway through that bucket.
    expect(quantile(0.5, new Map([[bucketIndex(2), 10]]))).toBeCloseTo(1.75);
    expect(bucketIndex(0.05)).toBe(0);
    expect(bucketIndex(100_000)).toBe(15);
    // Past the last bound the estimate is that bound.
    expect(quantile(0.99, new Map([[15, 3]]))).toBe(3600);
  });
});
