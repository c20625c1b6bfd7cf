/**
 * Metrics: `GET /v1/metrics`, the caller's tenant over 1 h, 24 h and 7 d; and `GET /metrics`, every
 * tenant in Prometheus' text format for an operator holding METRICS_TOKEN (404 while it is unset).
 * Both read what is stored: each tenant's TenantEvents roll-ups and the worklist in R2.
 */
import { createRoute } from "@hono/zod-openapi";
import { Hono } from "hono";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { readConfig } from "../config";
import { tenantEventsFor } from "../events/tenantEvents";
import { currentActivity, tenantsWithMetrics } from "../metrics/activity";
import { prometheusText } from "../metrics/prometheus";
import { MetricsView } from "../schemas/metrics";
import { sha256Hex } from "../storage/hex";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";
import { newRouter } from "./openapi";

const getMetrics = createRoute({
  method: "get",
  path: "/v1/metrics",
  summary:
    "The tenant's jobs by status, duration and queue-wait percentiles over 1 h, 24 h and 7 d; running sandboxes; artifact bytes stored",
  responses: { 200: { description: "The figures", content: { "application/json": { schema: MetricsView } } } },
});

export const metricsRouter = newRouter().openapi(getMetrics, async (c) => {
  const { tenant } = c.var;
  const events = tenantEventsFor(c.env.TENANT_EVENTS, tenant);
  const [windows, artifactBytesStored, activity, sandboxes] = await Promise.all([
    events.metricWindows(),
    events.artifactBytesStored(),
    currentActivity(c.env.TENANT_DIRECTORY, [tenant]),
    tenantDirectoryFor(c.env.TENANT_DIRECTORY, tenant).sandboxes(),
  ]);
  const now = activity.get(tenant);
  return c.json(
    {
      tenant,
      generatedAt: new Date().toISOString(),
      windows,
      runningSandboxes: now?.runningSandboxes ?? 0,
      activeJobs: now?.activeJobs ?? 0,
      liveSandboxes: sandboxes.length,
      artifactBytesStored,
    },
    200,
  );
});

/** Both sides hashed first, so the comparison is constant-time whatever the lengths. */
async function tokenMatches(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256Hex(presented), sha256Hex(expected)]);
  return crypto.subtle.timingSafeEqual(new TextEncoder().encode(a), new TextEncoder().encode(b));
}

/** Mounted ahead of tenant authentication: its own token stands in for an API key. */
export const prometheusRouter = new Hono<ApiEnv>().get("/metrics", async (c) => {
  const expected = readConfig(c.env).metricsToken;
  if (expected === undefined) throw new ApiError(404, ErrorCode.ROUTE_NOT_FOUND, "GET /metrics is off: set the secret METRICS_TOKEN");
  const presented = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1];
  if (presented === undefined || !(await tokenMatches(presented, expected))) {
    throw new ApiError(401, ErrorCode.UNAUTHENTICATED, "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>", undefined, {
      "www-authenticate": 'Bearer realm="artifact-sandbox-metrics"',
    });
  }
  const tenants = await tenantsWithMetrics(c.env.JOB_OUTPUT);
  const totals = new Map(
    await Promise.all(tenants.map(async (tenant) => [tenant, await tenantEventsFor(c.env.TENANT_EVENTS, tenant).metricTotals()] as const)),
  );
  const body = prometheusText(totals, await currentActivity(c.env.TENANT_DIRECTORY, tenants));
  return c.body(body, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
});
