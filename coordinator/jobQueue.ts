/**
 * A sandbox's unfinished jobs, kept in its coordinator's SQLite storage (durable, and private to
 * the one object that runs them). Jobs leave in submission order: ULIDs sort by time, and a
 * batch's IDs are monotonic, so ordering by job ID is ordering by submission.
 */
import { z } from "zod";
import type { QueuedJob } from "../runner/jobTypes";
import { JobRecord, JobRequest } from "../schemas/job";

const Row = z.object({
  job_id: z.string(),
  sandbox_id: z.string(),
  kv_written_at: z.number(),
  request: z.string().nullable(),
  not_before: z.number(),
  created: z.string().nullable(),
});

const Created = z.object({ record: JobRecord, etag: z.string() });

const NotBeforeRow = z.object({ not_before: z.number() });

export class JobQueue {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      job_id TEXT PRIMARY KEY,
      sandbox_id TEXT NOT NULL,
      kv_written_at INTEGER NOT NULL,
      request TEXT,
      not_before INTEGER NOT NULL DEFAULT 0,
      created TEXT
    )`);
    // Columns added since the table was first made: a table made before gets them.
    const columns = sql.exec("PRAGMA table_info(jobs)").toArray();
    if (!columns.some((column) => column.name === "created")) sql.exec("ALTER TABLE jobs ADD COLUMN created TEXT");
    // Pipelines: a job held back until the jobs it needs have finished.
    if (!columns.some((column) => column.name === "waiting_for_needs")) {
      sql.exec("ALTER TABLE jobs ADD COLUMN waiting_for_needs INTEGER NOT NULL DEFAULT 0");
    }
  }

  /** Adds jobs not already held; a duplicate delivery changes nothing. Returns how many were new. */
  add(jobs: QueuedJob[]): number {
    let added = 0;
    for (const job of jobs) {
      const cursor = this.sql.exec(
        "INSERT OR IGNORE INTO jobs (job_id, sandbox_id, kv_written_at, request, created) VALUES (?, ?, ?, ?, ?)",
        job.jobId,
        job.sandboxKey,
        job.kvWrittenAt,
        job.request === undefined ? null : JSON.stringify(job.request),
        job.created === undefined ? null : JSON.stringify(job.created),
      );
      added += cursor.rowsWritten;
    }
    return added;
  }

  /** The job submitted first among those still held, and when it may run (a retry's backoff). */
  next(): (QueuedJob & { notBefore: number }) | undefined {
    const row = this.sql
      .exec("SELECT job_id, sandbox_id, kv_written_at, request, not_before, created FROM jobs ORDER BY job_id LIMIT 1")
      .toArray()[0];
    if (row === undefined) return undefined;
    const parsed = Row.parse(row);
    const request = parsed.request === null ? undefined : JobRequest.safeParse(JSON.parse(parsed.request));
    const created = parsed.created === null ? undefined : Created.safeParse(JSON.parse(parsed.created));
    return {
      jobId: parsed.job_id,
      sandboxKey: parsed.sandbox_id,
      kvWrittenAt: parsed.kv_written_at,
      notBefore: parsed.not_before,
      // A request that no longer parses (a schema change) is read from R2, or reported missing.
      ...(request?.success ? { request: request.data } : {}),
      // Only a shortcut for the first claim: without it the record is read from R2.
      ...(created?.success ? { created: created.data } : {}),
    };
  }

  /**
   * When the first job in line may run, or undefined when none is held: what setting the alarm
   * needs, without reading and validating the job's request as `next` does.
   */
  firstNotBefore(): number | undefined {
    const row = this.sql.exec("SELECT not_before FROM jobs ORDER BY job_id LIMIT 1").toArray()[0];
    return row === undefined ? undefined : NotBeforeRow.parse(row).not_before;
  }

  /**
   * Holds the job back until `notBefore` (it stays first in line: later jobs wait for it). Its
   * record has moved on since it was created, so the next claim reads it.
   */
  deferUntil(jobId: string, notBefore: number): void {
    // A backoff, not a wait for needs: a finishing job it needed must not cut it short.
    this.sql.exec("UPDATE jobs SET not_before = ?, created = NULL, waiting_for_needs = 0 WHERE job_id = ?", notBefore, jobId);
  }

  /** Holds the job back until the jobs it needs have finished (`releaseWaiting`), or until `recheckAt`. */
  waitForNeeds(jobId: string, recheckAt: number): void {
    this.sql.exec("UPDATE jobs SET not_before = ?, waiting_for_needs = 1 WHERE job_id = ?", recheckAt, jobId);
  }

  /** A job that others need has finished: those waiting may look again now. */
  releaseWaiting(): number {
    return this.sql.exec("UPDATE jobs SET not_before = 0, waiting_for_needs = 0 WHERE waiting_for_needs = 1").rowsWritten;
  }

  has(jobId: string): boolean {
    return this.sql.exec("SELECT 1 FROM jobs WHERE job_id = ?", jobId).toArray().length > 0;
  }

  remove(jobId: string): void {
    this.sql.exec("DELETE FROM jobs WHERE job_id = ?", jobId);
  }

  size(): number {
    const row = this.sql.exec("SELECT COUNT(*) AS n FROM jobs").one();
    return z.object({ n: z.number() }).parse(row).n;
  }
}
