/**
 * A tenant's job metrics, rolled up once per finished job in its TenantEvents object's SQLite
 * (transactional, and no per-key write limit): counts by status, artifact bytes, and histogram
 * buckets of duration and queue wait (submit to start), per minute (kept 2 hours, for the 1 h
 * window), per hour (kept past the retention, for 24 h, 7 d and the bytes still stored) and for
 * all time (Prometheus counters). A finished job costs 3 upserts per table; a read of the three
 * windows scans at most 60 minute and 168 hour slots, times statuses or buckets.
 */
import { z } from "zod";
import type { JobRecord } from "../schemas/job";
import { BUCKET_BOUNDS_SECONDS, bucketIndex, quantile } from "./histogram";

export type HistogramName = "duration" | "queue_wait";
type Granularity = "m" | "h" | "all";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const MINUTE_SLOTS_KEPT_MS = 2 * HOUR_MS;

export interface Distribution {
  count: number;
  sumSeconds: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface WindowFigures {
  jobs: Record<string, number>;
  artifactBytes: number;
  durationSeconds: Distribution;
  queueWaitSeconds: Distribution;
}

export interface Totals {
  jobs: Record<string, number>;
  artifactBytes: number;
  histograms: Record<HistogramName, { buckets: number[]; count: number; sumSeconds: number }>;
}

const CountRow = z.object({ status: z.string(), jobs: z.number(), artifact_bytes: z.number() });
const BucketRow = z.object({ metric: z.enum(["duration", "queue_wait"]), bucket: z.number(), count: z.number(), sum_ms: z.number() });

/** Seconds from `from` to `to` (ISO times), or null when either is missing. */
function secondsBetween(from: string | null, to: string | null): number | null {
  if (from === null || to === null) return null;
  return Math.max(0, Date.parse(to) - Date.parse(from)) / 1000;
}

export class MetricRollup {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS metric_counts (
      granularity TEXT NOT NULL, slot INTEGER NOT NULL, status TEXT NOT NULL, jobs INTEGER NOT NULL, artifact_bytes INTEGER NOT NULL,
      PRIMARY KEY (granularity, slot, status))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS metric_buckets (
      granularity TEXT NOT NULL, slot INTEGER NOT NULL, metric TEXT NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL,
      sum_ms INTEGER NOT NULL, PRIMARY KEY (granularity, slot, metric, bucket))`);
  }

  /** Adds one finished job (called once per job: its event is written once). */
  record(record: JobRecord, keepHoursMs: number): void {
    const finishedAt = record.finishedAt === null ? Date.now() : Date.parse(record.finishedAt);
    const slots: [Granularity, number][] = [
      ["m", Math.floor(finishedAt / MINUTE_MS)],
      ["h", Math.floor(finishedAt / HOUR_MS)],
      ["all", 0],
    ];
    const artifactBytes = record.artifactIndex?.bytes ?? 0;
    const observed: [HistogramName, number | null][] = [
      ["duration", record.durationMs === null ? null : record.durationMs / 1000],
      ["queue_wait", secondsBetween(record.createdAt, record.startedAt)],
    ];
    for (const [granularity, slot] of slots) {
      this.sql.exec(
        `INSERT INTO metric_counts (granularity, slot, status, jobs, artifact_bytes) VALUES (?, ?, ?, 1, ?)
           ON CONFLICT DO UPDATE SET jobs = jobs + 1, artifact_bytes = artifact_bytes + excluded.artifact_bytes`,
        granularity,
        slot,
        record.status,
        artifactBytes,
      );
      for (const [metric, seconds] of observed) {
        if (seconds === null) continue;
        this.sql.exec(
          `INSERT INTO metric_buckets (granularity, slot, metric, bucket, count, sum_ms) VALUES (?, ?, ?, ?, 1, ?)
             ON CONFLICT DO UPDATE SET count = count + 1, sum_ms = sum_ms + excluded.sum_ms`,
          granularity,
          slot,
          metric,
          bucketIndex(seconds),
          Math.round(seconds * 1000),
        );
      }
    }
    for (const table of ["metric_counts", "metric_buckets"]) {
      this.sql.exec(
        `DELETE FROM ${table} WHERE granularity = 'm' AND slot < ?`,
        Math.floor((finishedAt - MINUTE_SLOTS_KEPT_MS) / MINUTE_MS),
      );
      this.sql.exec(`DELETE FROM ${table} WHERE granularity = 'h' AND slot < ?`, Math.floor((finishedAt - keepHoursMs) / HOUR_MS));
    }
  }

  /** The figures of jobs finished in the last `windowMs` (minute slots up to an hour, hour slots beyond). */
  window(windowMs: number, now: number): WindowFigures {
    const [granularity, slotMs]: [Granularity, number] = windowMs <= HOUR_MS ? ["m", MINUTE_MS] : ["h", HOUR_MS];
    const fromSlot = Math.floor(now / slotMs) - Math.ceil(windowMs / slotMs) + 1;
    const counts = this.sql
      .exec(
        "SELECT status, SUM(jobs) AS jobs, SUM(artifact_bytes) AS artifact_bytes FROM metric_counts WHERE granularity = ? AND slot >= ? GROUP BY status",
        granularity,
        fromSlot,
      )
      .toArray()
      .map((row) => CountRow.parse(row));
    const buckets = this.sql
      .exec(
        "SELECT metric, bucket, SUM(count) AS count, SUM(sum_ms) AS sum_ms FROM metric_buckets WHERE granularity = ? AND slot >= ? GROUP BY metric, bucket",
        granularity,
        fromSlot,
      )
      .toArray()
      .map((row) => BucketRow.parse(row));
    return {
      jobs: Object.fromEntries(counts.map((row) => [row.status, row.jobs])),
      artifactBytes: counts.reduce((sum, row) => sum + row.artifact_bytes, 0),
      durationSeconds: distribution(buckets.filter((row) => row.metric === "duration")),
      queueWaitSeconds: distribution(buckets.filter((row) => row.metric === "queue_wait")),
    };
  }

  /** All-time counters and cumulative histogram buckets, for Prometheus. */
  totals(): Totals {
    const counts = this.sql
      .exec("SELECT status, jobs, artifact_bytes FROM metric_counts WHERE granularity = 'all'")
      .toArray()
      .map((row) => CountRow.parse(row));
    const buckets = this.sql
      .exec("SELECT metric, bucket, count, sum_ms FROM metric_buckets WHERE granularity = 'all'")
      .toArray()
      .map((row) => BucketRow.parse(row));
    const histogram = (metric: HistogramName) => {
      const rows = buckets.filter((row) => row.metric === metric);
      const perBucket = Array.from({ length: BUCKET_BOUNDS_SECONDS.length + 1 }, (_, index) =>
        rows.filter((row) => row.bucket === index).reduce((sum, row) => sum + row.count, 0),
      );
      return {
        buckets: perBucket,
        count: perBucket.reduce((sum, count) => sum + count, 0),
        sumSeconds: rows.reduce((sum, row) => sum + row.sum_ms, 0) / 1000,
      };
    };
    return {
      jobs: Object.fromEntries(counts.map((row) => [row.status, row.jobs])),
      artifactBytes: counts.reduce((sum, row) => sum + row.artifact_bytes, 0),
      histograms: { duration: histogram("duration"), queue_wait: histogram("queue_wait") },
    };
  }
}

function distribution(rows: z.infer<typeof BucketRow>[]): Distribution {
  const counts = new Map(rows.map((row) => [row.bucket, row.count]));
  const round = (value: number | null) => (value === null ? null : Math.round(value * 1000) / 1000);
  return {
    count: rows.reduce((sum, row) => sum + row.count, 0),
    sumSeconds: rows.reduce((sum, row) => sum + row.sum_ms, 0) / 1000,
    p50: round(quantile(0.5, counts)),
    p90: round(quantile(0.9, counts)),
    p99: round(quantile(0.99, counts)),
  };
}
