/**
 * Copies finished job records to KV without breaking KV's one-write-per-second-per-key limit.
 * The API writes nothing to KV at submit, so the copy is made at once; a job submitted by an API
 * that did write the key then (its messages carry when) and finishing within the second gets its
 * copy from one delayed queue message per batch instead of a consumer that waits.
 */
import type { JobRecord } from "../schemas/job";
import { isTerminal } from "../schemas/job";
import type { CacheMessage } from "../schemas/queueMessages";
import { type JobStores, KV_WRITE_SPACING_MS } from "../storage/jobStore";

type PendingCopy = CacheMessage["jobs"][number];

/** At most this many jobs per cache message, and about this many bytes (the limit is 128 KB). */
const JOBS_PER_MESSAGE = 100;
const MESSAGE_BUDGET_BYTES = 96 * 1024;
/** A record larger than this (a long artifact list) is not carried: the copy reads it from R2. */
const CARRIED_RECORD_MAX_BYTES = 8 * 1024;

function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).byteLength;
}

export class KvCacheScheduler {
  private readonly pending: PendingCopy[] = [];

  constructor(
    private readonly stores: JobStores,
    private readonly send: (message: CacheMessage, delaySeconds: number) => Promise<void>,
  ) {}

  /** The scheduler every caller uses: delayed copies go out as `cache` messages on the job queue. */
  static overQueue(stores: JobStores, queue: Queue): KvCacheScheduler {
    return new KvCacheScheduler(stores, async (message, delaySeconds) => {
      await queue.send(message, { contentType: "json", delaySeconds });
    });
  }

  /** Copies the record now if KV allows, else remembers it for `flush`. */
  async finished(record: JobRecord, kvWrittenAt: number): Promise<void> {
    if (Date.now() < kvWrittenAt + KV_WRITE_SPACING_MS) {
      const carried = jsonBytes(record) <= CARRIED_RECORD_MAX_BYTES;
      this.pending.push({ tenant: record.tenant, jobId: record.id, kvWrittenAt, ...(carried ? { record } : {}) });
      return;
    }
    await this.copy(record);
  }

  /** Handles a delivered cache message: copies what is due, reschedules anything early. */
  async refresh(message: CacheMessage): Promise<void> {
    await Promise.all(
      message.jobs.map(async (job) => {
        if (Date.now() < job.kvWrittenAt + KV_WRITE_SPACING_MS) {
          this.pending.push(job);
          return;
        }
        const record = job.record ?? (await this.stores(job.tenant).getVersioned(job.jobId))?.record;
        if (record && isTerminal(record.status)) await this.copy(record);
      }),
    );
  }

  /** Sends the delayed messages for everything still pending. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const jobs: PendingCopy[] = [];
      let bytes = 0;
      for (const job of this.pending) {
        const size = jsonBytes(job);
        if (jobs.length === JOBS_PER_MESSAGE || (jobs.length > 0 && bytes + size > MESSAGE_BUDGET_BYTES)) break;
        jobs.push(job);
        bytes += size;
      }
      this.pending.splice(0, jobs.length);
      const dueAt = Math.max(...jobs.map((job) => job.kvWrittenAt + KV_WRITE_SPACING_MS));
      await this.send({ kind: "cache", jobs }, Math.max(1, Math.ceil((dueAt - Date.now()) / 1000)));
    }
  }

  private async copy(record: JobRecord): Promise<void> {
    // Only a cache: if the write fails, R2 still answers every poll correctly.
    await this.stores(record.tenant)
      .cacheFinished(record)
      .catch((error: unknown) => console.warn(`job ${record.id}: KV cache write failed`, error));
  }
}
