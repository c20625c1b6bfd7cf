/**
 * A tenant's events, in its TenantEvents object's SQLite: one per finished job and one per
 * finished batch, each written once (its subject, the job or batch, is unique, so a repeated
 * report of the same finish adds nothing). The sequence number is the polling cursor.
 */
import { ulid } from "ulid";
import { z } from "zod";
import { addColumnIfMissing } from "../platform/sqlSchema";
import { type BatchEventData, type EventType, EventView, type JobEventData } from "../schemas/events";
import { batchStatus, JobError, type JobRecord, JobStatus } from "../schemas/job";

const EventRow = z.object({ seq: z.number(), body: z.string() });
const BatchJobRow = z.object({
  job_id: z.string(),
  name: z.string().nullable(),
  sandbox_id: z.string(),
  status: JobStatus,
  allow_failure: z.number(),
  exit_code: z.number().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number().nullable(),
});
const BatchRow = z.object({ created_at: z.string(), total: z.number() });

export interface StoredEvent {
  seq: number;
  event: EventView;
  /** The body exactly as stored: what every delivery of it sends and signs. */
  body: string;
}

export class EventLog {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL, created_at INTEGER NOT NULL, body TEXT NOT NULL)`);
    sql.exec("CREATE INDEX IF NOT EXISTS events_created ON events (created_at)");
    // A batch's size (from its manifest) and its finished jobs, until its batch.finished event.
    sql.exec("CREATE TABLE IF NOT EXISTS event_batches (batch_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, total INTEGER NOT NULL)");
    sql.exec(`CREATE TABLE IF NOT EXISTS event_batch_jobs (
      batch_id TEXT NOT NULL, job_id TEXT NOT NULL, name TEXT, sandbox_id TEXT NOT NULL, status TEXT NOT NULL,
      exit_code INTEGER, error TEXT, duration_ms INTEGER, PRIMARY KEY (batch_id, job_id))`);
    // Whether the job's failure is allowed (added after the table: older objects lack it).
    addColumnIfMissing(sql, "event_batch_jobs", "allow_failure", "INTEGER NOT NULL DEFAULT 0");
  }

  /** Appends the event for `subject` unless it has one already; undefined when it had. */
  append(subject: string, type: EventType, data: JobEventData | BatchEventData, at: Date): StoredEvent | undefined {
    const event: EventView = { id: `evt_${ulid(at.getTime())}`, type, timestamp: at.toISOString(), data };
    const body = JSON.stringify(event);
    const inserted = this.sql.exec(
      "INSERT OR IGNORE INTO events (id, subject, type, created_at, body) VALUES (?, ?, ?, ?, ?)",
      event.id,
      subject,
      type,
      at.getTime(),
      body,
    );
    if (inserted.rowsWritten === 0) return undefined;
    const seq = z.object({ seq: z.number() }).parse(this.sql.exec("SELECT seq FROM events WHERE id = ?", event.id).one()).seq;
    return { seq, event, body };
  }

  /** Events after the cursor `since` (0: the oldest kept), oldest first. */
  page(since: number, limit: number): { events: StoredEvent[]; nextCursor: number } {
    const events = this.sql
      .exec("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", since, limit)
      .toArray()
      .map((row) => this.parse(EventRow.parse(row)));
    return { events, nextCursor: events[events.length - 1]?.seq ?? since };
  }

  byId(eventId: string): StoredEvent | undefined {
    const row = this.sql.exec("SELECT seq, body FROM events WHERE id = ?", eventId).toArray()[0];
    return row === undefined ? undefined : this.parse(EventRow.parse(row));
  }

  /** Forgets events (and batch bookkeeping) older than `before`. */
  purge(before: number): void {
    this.sql.exec("DELETE FROM events WHERE created_at < ?", before);
    this.sql.exec("DELETE FROM event_batches WHERE created_at < ?", new Date(before).toISOString());
    this.sql.exec("DELETE FROM event_batch_jobs WHERE batch_id NOT IN (SELECT batch_id FROM event_batches)");
  }

  knowsBatch(batchId: string): boolean {
    return this.sql.exec("SELECT 1 FROM event_batches WHERE batch_id = ?", batchId).toArray().length > 0;
  }

  noteBatch(batchId: string, createdAt: string, total: number): void {
    this.sql.exec("INSERT OR IGNORE INTO event_batches (batch_id, created_at, total) VALUES (?, ?, ?)", batchId, createdAt, total);
  }

  /**
   * Notes a finished job of a batch whose size is known; the batch's summary once this was its
   * last unfinished job, undefined until then.
   */
  batchJobFinished(record: JobRecord): BatchEventData | undefined {
    if (record.batchId === null) return undefined;
    const batchRow = this.sql.exec("SELECT created_at, total FROM event_batches WHERE batch_id = ?", record.batchId).toArray()[0];
    if (batchRow === undefined) return undefined;
    const batch = BatchRow.parse(batchRow);
    this.sql.exec(
      `INSERT OR IGNORE INTO event_batch_jobs (batch_id, job_id, name, sandbox_id, status, allow_failure, exit_code, error, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      record.batchId,
      record.id,
      record.name,
      record.sandboxId,
      record.status,
      record.allowFailure ? 1 : 0,
      record.exitCode,
      record.error === null ? null : JSON.stringify(record.error),
      record.durationMs,
    );
    const jobs = this.sql
      .exec(
        `SELECT job_id, name, sandbox_id, status, allow_failure, exit_code, error, duration_ms
           FROM event_batch_jobs WHERE batch_id = ? ORDER BY job_id`,
        record.batchId,
      )
      .toArray()
      .map((row) => BatchJobRow.parse(row))
      .map((row) => ({
        id: row.job_id,
        name: row.name,
        sandboxId: row.sandbox_id,
        status: row.status,
        allowFailure: row.allow_failure === 1,
        exitCode: row.exit_code,
        error: row.error === null ? null : JobError.parse(JSON.parse(row.error)),
        durationMs: row.duration_ms,
      }));
    if (jobs.length < batch.total) return undefined;
    const counts: Record<string, number> = {};
    let allowedFailures = 0;
    for (const job of jobs) {
      if (job.allowFailure && job.status !== "succeeded" && job.status !== "skipped") allowedFailures++;
      else counts[job.status] = (counts[job.status] ?? 0) + 1;
    }
    return {
      batchId: record.batchId,
      status: batchStatus(jobs),
      createdAt: batch.created_at,
      finishedAt: record.finishedAt ?? new Date().toISOString(),
      counts,
      allowedFailures,
      jobs,
    };
  }

  private parse(row: z.infer<typeof EventRow>): StoredEvent {
    return { seq: row.seq, event: EventView.parse(JSON.parse(row.body)), body: row.body };
  }
}
