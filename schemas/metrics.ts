/** `GET /v1/metrics`: a tenant's figures over the last hour, day and week, and what is live now. */
import { z } from "@hono/zod-openapi";

export const Distribution = z
  .object({
    /** Jobs observed (queue wait: those that started). */
    count: z.number().int(),
    sumSeconds: z.number(),
    /** Estimated from histogram buckets (README, Metrics); null without observations. */
    p50: z.number().nullable(),
    p90: z.number().nullable(),
    p99: z.number().nullable(),
  })
  .openapi("Distribution");

export const WindowFigures = z
  .object({
    /** Jobs finished in the window, by status (a cancelled job is `failed`). */
    jobs: z.record(z.string(), z.number().int()),
    /** Artifact bytes collected by those jobs. */
    artifactBytes: z.number().int(),
    durationSeconds: Distribution,
    /** Submit to start. */
    queueWaitSeconds: Distribution,
  })
  .openapi("MetricWindow");

export const MetricsView = z
  .object({
    tenant: z.string(),
    generatedAt: z.string(),
    windows: z.object({ "1h": WindowFigures, "24h": WindowFigures, "7d": WindowFigures }),
    /** Sandboxes with a queued or running job now. */
    runningSandboxes: z.number().int(),
    /** Queued plus running jobs now. */
    activeJobs: z.number().int(),
    /** Sandboxes the tenant has (not deleted or expired). */
    liveSandboxes: z.number().int(),
    /** Artifact bytes of jobs still within their retention. */
    artifactBytesStored: z.number().int(),
  })
  .openapi("Metrics");
export type MetricsView = z.infer<typeof MetricsView>;
