/**
 * Deployed, every finished job is also one Workers Analytics Engine data point (binding
 * JOB_ANALYTICS), for queries across tenants and beyond the stored windows (README, Metrics).
 * Locally the binding may be missing or a no-op: then nothing is written.
 *
 * blobs:   tenant, status, sandboxId, error code ("" when none), event type
 * doubles: durationMs, queueWaitMs (-1 when it never started), artifact bytes, attempts
 * index:   tenant (Analytics Engine samples per index value)
 */
import type { JobRecord } from "../schemas/job";

export function writeJobDataPoint(dataset: AnalyticsEngineDataset | undefined, record: JobRecord, eventType: string): void {
  if (!dataset) return;
  const queueWaitMs = record.startedAt === null ? -1 : Math.max(0, Date.parse(record.startedAt) - Date.parse(record.createdAt));
  try {
    dataset.writeDataPoint({
      indexes: [record.tenant],
      blobs: [record.tenant, record.status, record.sandboxId, record.error?.code ?? "", eventType],
      doubles: [record.durationMs ?? 0, queueWaitMs, record.artifactIndex?.bytes ?? 0, record.attempts],
    });
  } catch (error) {
    // Metrics must never fail the job's event.
    console.warn(`job ${record.id}: analytics data point not written`, error);
  }
}
