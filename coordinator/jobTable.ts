/**
 * A sandbox's jobs and their changing state (queued, waiting for needs, running with a lease,
 * attempts, a requested cancel, the final record), kept in its coordinator's SQLite storage:
 * durable, transactional, and written by that one object only. Unfinished jobs leave in
 * submission order: ULIDs sort by time, and a batch's IDs are monotonic, so ordering by job ID is
 * ordering by submission. Finished rows stay until the job's retention ends, for polls and lists.
 */
import { z } from "zod";
import { addColumnIfMissing } from "../platform/sqlSchema";
import { JobError, JobRecord, JobRequest, type JobStatus, OutputOffsets } from "../schemas/job";
import { WRITE_SPACING_MS } from "../storage/jobStore";

/** A job handed to a coordinator: the record as submitted, and its request unless that waits in R2. */
export interface HandedJob {
  submitted: JobRecord;
  request?: JobRequest;
  /** Whether R2 may hold a request or a worklist entry of the job, to remove once it ends. */
  leftovers: boolean;
}

/** An unfinished job as its runner sees it: the record as it stands, and the request if held. */
export interface HeldJob {
  record: JobRecord;
  request?: JobRequest;
  notBefore: number;
  /** Where an earlier attempt's live output ended, as of its last lease renewal or requeue (a next attempt's offsets go on from there). */
  liveLogEnd?: OutputOffsets;
}

const Row = z.object({
  job_id: z.string(),
  status: z.string(),
  submitted: z.string(),
  request: z.string().nullable(),
  not_before: z.number(),
  attempts: z.number(),
  started_at: z.number().nullable(),
  lease_until: z.number().nullable(),
  cancel_requested: z.number(),
  last_error: z.string().nullable(),
  final: z.string().nullable(),
  live_log_end: z.string().nullable(),
});
type Row = z.infer<typeof Row>;

const COLUMNS =
  "job_id, status, submitted, request, not_before, attempts, started_at, lease_until, cancel_requested, last_error, final, live_log_end";
const UNFINISHED = "status IN ('queued', 'running')";

const Count = z.object({ n: z.number() });
const HeadOfLine = z.object({ job_id: z.string(), status: z.string() });
type HeadOfLine = z.infer<typeof HeadOfLine>;
const WaitingFor = z.object({ waiting_for: z.string().nullable() });
const NotBefore = z.object({ not_before: z.number() });

function parseJson<T>(schema: z.ZodType<T>, text: string | null): T | undefined {
  if (text === null) return undefined;
  const parsed = schema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/** How many of the jobs, sorted by ID (SQLite's byte order, which ULIDs share with JavaScript's), come before `jobId`. */
function countBefore(sorted: HeadOfLine[], jobId: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle]?.job_id ?? jobId) < jobId) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The record a row stands for: the final one once written, else the submitted one with the live state. */
function recordOf(row: Row): JobRecord | undefined {
  const final = parseJson(JobRecord, row.final);
  if (final) return final;
  const submitted = parseJson(JobRecord, row.submitted);
  if (!submitted) return undefined;
  return {
    ...submitted,
    status: row.status === "running" ? "running" : "queued",
    attempts: row.attempts,
    startedAt: row.started_at === null ? null : new Date(row.started_at).toISOString(),
    leaseUntil: row.lease_until === null ? null : new Date(row.lease_until).toISOString(),
    cancelRequested: row.cancel_requested === 1,
    error: parseJson(JobError, row.last_error) ?? null,
  };
}

export class JobTable {
  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS job_state (
      job_id TEXT PRIMARY KEY,
      status TEXT NOT NULL,
      submitted TEXT NOT NULL,
      request TEXT,
      not_before INTEGER NOT NULL DEFAULT 0,
      waiting_for_needs INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      started_at INTEGER,
      lease_until INTEGER,
      cancel_requested INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      final TEXT,
      published INTEGER NOT NULL DEFAULT 0,
      publish_after INTEGER NOT NULL DEFAULT 0,
      cleaned INTEGER NOT NULL DEFAULT 0,
      submitted_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    )`);
    addColumnIfMissing(storage.sql, "job_state", "live_log_end", "TEXT");
    // 1 once the sandbox was deleted after the job came: it leaves the sandbox's list, not the API.
    addColumnIfMissing(storage.sql, "job_state", "unlisted", "INTEGER NOT NULL DEFAULT 0");
    // The jobs a job held back for its needs still waits for, as a JSON array of IDs.
    addColumnIfMissing(storage.sql, "job_state", "waiting_for", "TEXT");
    storage.sql.exec("CREATE INDEX IF NOT EXISTS job_state_status ON job_state (status, job_id)");
    storage.sql.exec("CREATE INDEX IF NOT EXISTS job_state_unpublished ON job_state (published, cleaned)");
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  private row(jobId: string): Row | undefined {
    const row = this.sql.exec(`SELECT ${COLUMNS} FROM job_state WHERE job_id = ?`, jobId).toArray()[0];
    return row === undefined ? undefined : Row.parse(row);
  }

  /** Adds jobs not already known; a duplicate hand-over or delivery changes nothing. Returns how many were new. */
  add(jobs: HandedJob[]): number {
    let added = 0;
    this.storage.transactionSync(() => {
      for (const { submitted, request, leftovers } of jobs) {
        added += this.sql.exec(
          `INSERT OR IGNORE INTO job_state (job_id, status, submitted, request, not_before, cleaned, submitted_at, expires_at)
             VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)`,
          submitted.id,
          JSON.stringify(submitted),
          request === undefined ? null : JSON.stringify(request),
          // Unpacking an upload deletes the archive the submit has just written: not within R2's
          // one write per second to that key.
          submitted.request.type === "file" && submitted.request.op === "extract" ? Date.now() + WRITE_SPACING_MS : 0,
          leftovers ? 0 : 1,
          // Everything the submit wrote to R2 was written before the job reached its coordinator.
          Date.now(),
          Date.parse(submitted.expiresAt),
        ).rowsWritten;
      }
    });
    return added;
  }

  /** The unfinished job submitted first, with its record as it stands and when it may run. */
  next(): HeldJob | undefined {
    const row = this.sql.exec(`SELECT ${COLUMNS} FROM job_state WHERE ${UNFINISHED} ORDER BY job_id LIMIT 1`).toArray()[0];
    if (row === undefined) return undefined;
    const parsed = Row.parse(row);
    const record = recordOf(parsed);
    if (!record) throw new Error(`job ${parsed.job_id}: its stored record no longer parses`);
    const request = parseJson(JobRequest, parsed.request);
    const liveLogEnd = parseJson(OutputOffsets, parsed.live_log_end);
    return { record, notBefore: parsed.not_before, ...(request ? { request } : {}), ...(liveLogEnd ? { liveLogEnd } : {}) };
  }

  /** When the first unfinished job may run, or undefined when none is held. */
  firstNotBefore(): number | undefined {
    const row = this.sql.exec(`SELECT not_before FROM job_state WHERE ${UNFINISHED} ORDER BY job_id LIMIT 1`).toArray()[0];
    return row === undefined ? undefined : NotBefore.parse(row).not_before;
  }

  /** Marks a queued job running as its next attempt, under a lease; the record as claimed. */
  claim(jobId: string, leaseUntil: number): JobRecord | undefined {
    const claimed = this.sql.exec(
      `UPDATE job_state SET status = 'running', attempts = attempts + 1, started_at = ?, lease_until = ?, last_error = NULL,
         not_before = 0, waiting_for_needs = 0 WHERE job_id = ? AND status = 'queued'`,
      Date.now(),
      leaseUntil,
      jobId,
    ).rowsWritten;
    return claimed === 0 ? undefined : this.record(jobId);
  }

  /**
   * Extends a running attempt's lease, noting where its live output stands (should the coordinator
   * die, the next attempt's offsets go on from there); whether the attempt still holds the job, and
   * whether a cancel was asked.
   */
  renew(jobId: string, attempt: number, leaseUntil: number, liveLogEnd?: OutputOffsets): { held: boolean; cancelRequested: boolean } {
    const renewed = this.sql.exec(
      "UPDATE job_state SET lease_until = ?, live_log_end = COALESCE(?, live_log_end) WHERE job_id = ? AND status = 'running' AND attempts = ?",
      leaseUntil,
      liveLogEnd ? JSON.stringify(liveLogEnd) : null,
      jobId,
      attempt,
    ).rowsWritten;
    return { held: renewed > 0, cancelRequested: this.row(jobId)?.cancel_requested === 1 };
  }

  /** A running attempt failed and will be tried again after `notBefore`; it stays first in line. */
  requeue(
    jobId: string,
    attempt: number,
    error: JobError,
    notBefore: number,
    options: { attemptCounts: boolean; liveLogEnd?: OutputOffsets },
  ): boolean {
    // An attempt that never reached a container (none was free) is given back: waiting is not failing.
    const attempts = options.attemptCounts ? "attempts" : "attempts - 1";
    return (
      this.sql.exec(
        `UPDATE job_state SET status = 'queued', lease_until = NULL, last_error = ?, not_before = ?, waiting_for_needs = 0,
           attempts = ${attempts}, live_log_end = COALESCE(?, live_log_end)
           WHERE job_id = ? AND status = 'running' AND attempts = ?`,
        JSON.stringify(error),
        notBefore,
        options.liveLogEnd ? JSON.stringify(options.liveLogEnd) : null,
        jobId,
        attempt,
      ).rowsWritten > 0
    );
  }

  /** Holds a queued job back until `notBefore` (a storage error before it ran); it stays first in line. */
  deferQueued(jobId: string, notBefore: number): void {
    this.sql.exec("UPDATE job_state SET not_before = ? WHERE job_id = ? AND status = 'queued'", notBefore, jobId);
  }

  /** Holds a queued job back until `notBefore` with the reason it waits (no container for it yet); it stays first in line. */
  holdQueued(jobId: string, error: JobError, notBefore: number): void {
    this.sql.exec(
      "UPDATE job_state SET last_error = ?, not_before = ? WHERE job_id = ? AND status = 'queued'",
      JSON.stringify(error),
      notBefore,
      jobId,
    );
  }

  /** Lets a job held for `code` (holdQueued) run now; whether there was one. */
  releaseHeld(code: string): boolean {
    return (
      this.sql.exec(
        `UPDATE job_state SET not_before = ? WHERE status = 'queued' AND not_before > ? AND json_extract(last_error, '$.code') = ?`,
        Date.now(),
        Date.now(),
        code,
      ).rowsWritten > 0
    );
  }

  /**
   * Holds a queued job back until the jobs it needs have finished (`releaseWaiting`), or until
   * `recheckAt`; `unfinished` (those it waits for) is what it says it waits for meanwhile.
   */
  waitForNeeds(jobId: string, unfinished: string[], recheckAt: number): void {
    this.sql.exec(
      "UPDATE job_state SET not_before = ?, waiting_for_needs = 1, waiting_for = ? WHERE job_id = ? AND status = 'queued'",
      recheckAt,
      JSON.stringify(unfinished),
      jobId,
    );
  }

  /** A job that others need has finished: those waiting may look again now. */
  releaseWaiting(): number {
    return this.sql.exec("UPDATE job_state SET not_before = 0, waiting_for_needs = 0 WHERE waiting_for_needs = 1 AND status = 'queued'")
      .rowsWritten;
  }

  /** Records a cancel of a running job (its runner ends it); false when the job is not running. */
  requestCancel(jobId: string): boolean {
    return this.sql.exec("UPDATE job_state SET cancel_requested = 1 WHERE job_id = ? AND status = 'running'", jobId).rowsWritten > 0;
  }

  /**
   * Ends an unfinished job with its final record, in one statement: only a job still unfinished
   * (and, given `attempt`, still in that attempt) ends, so nothing finishes a job twice. Its
   * request goes with it (it holds env values), and its live log's end (only a next attempt
   * reads it). False when the job was not in that state.
   */
  finish(final: JobRecord, attempt?: number): boolean {
    return (
      this.sql.exec(
        `UPDATE job_state SET status = ?, final = ?, request = NULL, lease_until = NULL, waiting_for_needs = 0, live_log_end = NULL
           WHERE job_id = ? AND ${UNFINISHED} AND (? IS NULL OR attempts = ?)`,
        final.status,
        JSON.stringify(final),
        final.id,
        attempt ?? null,
        attempt ?? null,
      ).rowsWritten > 0
    );
  }

  /** The job as it stands (final once finished), or undefined when this coordinator does not know it. */
  record(jobId: string): JobRecord | undefined {
    const row = this.row(jobId);
    return row && recordOf(row);
  }

  /**
   * The records as an answer shows them: a queued job says what it waits for (earlier unfinished
   * jobs of this sandbox, which runs them one at a time in order, or the jobs it needs). One read
   * of the line ahead of the last queued job serves a whole page.
   */
  withWaitingReasons(records: JobRecord[]): JobRecord[] {
    const queued = records.filter((record) => record.status === "queued").map((record) => record.id);
    const last = queued.reduce<string | undefined>((latest, id) => (latest === undefined || id > latest ? id : latest), undefined);
    if (last === undefined) return records;
    const line = HeadOfLine.array().parse(
      this.sql.exec(`SELECT job_id, status FROM job_state WHERE ${UNFINISHED} AND job_id < ? ORDER BY job_id`, last).toArray(),
    );
    return records.map((record) => (record.status === "queued" ? this.withReason(record, line) : record));
  }

  /** `line`: the unfinished jobs ahead of the record's, oldest first (more after it changes nothing). */
  private withReason(record: JobRecord, line: HeadOfLine[]): JobRecord {
    const ahead = countBefore(line, record.id);
    const first = line[0];
    if (ahead > 0 && first) {
      const jobs = ahead === 1 ? "1 earlier job" : `${ahead} earlier jobs`;
      return {
        ...record,
        waitingReason: `Behind ${jobs} of sandbox ${record.sandboxId} (${first.job_id} is ${first.status}): a sandbox runs its jobs one at a time, in the order they came`,
      };
    }
    const held = WaitingFor.array().parse(
      this.sql.exec("SELECT waiting_for FROM job_state WHERE job_id = ? AND waiting_for_needs = 1", record.id).toArray(),
    )[0];
    if (!held) return record;
    const unfinished = parseJson(z.array(z.string()), held.waiting_for) ?? record.needs;
    return { ...record, waitingReason: `Waiting for the jobs it needs to finish (${unfinished.join(", ")})` };
  }

  /** Any one job of this sandbox (they all name its tenant and sandbox ID). */
  anyRecord(): JobRecord | undefined {
    const row = this.sql.exec(`SELECT ${COLUMNS} FROM job_state LIMIT 1`).toArray()[0];
    return row === undefined ? undefined : recordOf(Row.parse(row));
  }

  has(jobId: string): boolean {
    return this.sql.exec("SELECT 1 FROM job_state WHERE job_id = ?", jobId).toArray().length > 0;
  }

  isFinished(jobId: string): boolean {
    return this.sql.exec(`SELECT 1 FROM job_state WHERE job_id = ? AND NOT ${UNFINISHED}`, jobId).toArray().length > 0;
  }

  /** Unfinished job IDs, oldest first. */
  unfinishedIds(limit: number): string[] {
    return this.sql
      .exec(`SELECT job_id FROM job_state WHERE ${UNFINISHED} ORDER BY job_id LIMIT ?`, limit)
      .toArray()
      .map((row) => z.object({ job_id: z.string() }).parse(row).job_id);
  }

  unfinishedCount(): number {
    return Count.parse(this.sql.exec(`SELECT COUNT(*) AS n FROM job_state WHERE ${UNFINISHED}`).one()).n;
  }

  /** A page of the sandbox's jobs, newest first, after `cursor` (a job ID); `status` filters. */
  page(options: { status?: JobStatus; limit: number; cursor?: string }): { jobs: JobRecord[]; nextCursor: string | null } {
    const now = Date.now();
    const where = ["expires_at > ?", "unlisted = 0"];
    const params: (string | number)[] = [now];
    if (options.cursor) {
      where.push("job_id < ?");
      params.push(options.cursor);
    }
    if (options.status) {
      where.push("status = ?");
      params.push(options.status);
    }
    const rows = this.sql
      .exec(`SELECT ${COLUMNS} FROM job_state WHERE ${where.join(" AND ")} ORDER BY job_id DESC LIMIT ?`, ...params, options.limit + 1)
      .toArray()
      .map((row) => Row.parse(row));
    const pageRows = rows.slice(0, options.limit);
    const jobs = pageRows.flatMap((row) => recordOf(row) ?? []);
    const last = pageRows[pageRows.length - 1];
    return { jobs, nextCursor: rows.length > options.limit && last ? last.job_id : null };
  }

  /** The sandbox is deleted (or expired): every job it has leaves its list, so a reused ID starts with an empty one; each still opens by its ID. */
  unlistAll(): void {
    this.sql.exec("UPDATE job_state SET unlisted = 1");
  }

  /**
   * Finished jobs whose final record is not yet in R2 and KV, or whose leftovers (a stored
   * request, the worklist entry) are not yet removed, oldest first.
   */
  unpublished(limit: number): { record: JobRecord; published: boolean; submittedAt: number }[] {
    return this.sql
      .exec(
        `SELECT ${COLUMNS}, published, submitted_at FROM job_state
           WHERE NOT ${UNFINISHED} AND (published = 0 OR cleaned = 0) AND publish_after <= ? ORDER BY job_id LIMIT ?`,
        Date.now(),
        limit,
      )
      .toArray()
      .flatMap((row) => {
        const parsed = Row.extend({ published: z.number(), submitted_at: z.number() }).parse(row);
        const record = recordOf(parsed);
        return record ? [{ record, published: parsed.published === 1, submittedAt: parsed.submitted_at }] : [];
      });
  }

  /**
   * When the next finished job is due for publication or for the removal of its leftovers
   * (R2 takes one write per second per key), or undefined when none waits.
   */
  nextPublicationDue(): number | undefined {
    const row = this.sql
      .exec(
        `SELECT MIN(CASE WHEN published = 0 THEN publish_after ELSE MAX(publish_after, submitted_at + ?) END) AS due
           FROM job_state WHERE NOT ${UNFINISHED} AND (published = 0 OR cleaned = 0)`,
        WRITE_SPACING_MS,
      )
      .one();
    return z.object({ due: z.number().nullable() }).parse(row).due ?? undefined;
  }

  /** A publication failed: not tried again before `at`. */
  publishNotBefore(jobId: string, at: number): void {
    this.sql.exec("UPDATE job_state SET publish_after = ? WHERE job_id = ?", at, jobId);
  }

  markPublished(jobId: string): void {
    this.sql.exec("UPDATE job_state SET published = 1 WHERE job_id = ?", jobId);
  }

  markCleaned(jobId: string): void {
    this.sql.exec("UPDATE job_state SET cleaned = 1 WHERE job_id = ?", jobId);
  }

  /** Forgets finished jobs past their retention (their R2 objects expire on their own schedule). */
  purgeExpired(): void {
    this.sql.exec(`DELETE FROM job_state WHERE NOT ${UNFINISHED} AND published = 1 AND cleaned = 1 AND expires_at < ?`, Date.now());
  }
}
