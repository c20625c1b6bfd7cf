/**
 * A tenant's job objects in R2 and KV, each written once: the record as submitted (which names
 * the job's sandbox, so a poll finds its coordinator without reading anything that changes), the
 * final record, and a request its coordinator did not take at submit. KV holds the final record
 * only, for fast polls: it is eventually consistent, and a finished record never changes.
 * A job's changing state (queued, running, attempts, cancel) lives in its sandbox's coordinator.
 */
import { isTerminal, JobRecord, JobRequest } from "../schemas/job";
import { kvKeys, r2Keys, sandboxKey } from "./layout";

/** KV and R2 take one write per second per key; this margin covers clock skew between isolates. */
export const WRITE_SPACING_MS = 1100;

/** One tenant's jobs: every key it reads or writes carries the tenant (storage/layout.ts). */
export class JobStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly bucket: R2Bucket,
    private readonly retentionSeconds: number,
    readonly tenant: string,
  ) {}

  /** Records a new job as submitted, and puts it on the sweeper's worklist until it ends. */
  async saveSubmitted(record: JobRecord): Promise<void> {
    await Promise.all([
      this.bucket.put(r2Keys.submitted(this.tenant, record.id), JSON.stringify(record)),
      this.bucket.put(r2Keys.activeEntry(sandboxKey(this.tenant, record.sandboxId), record.id), ""),
    ]);
  }

  /** The record as submitted (status queued): what a job its coordinator has not taken yet looks like. */
  async readSubmitted(jobId: string): Promise<JobRecord | undefined> {
    return parseRecord(await (await this.bucket.get(r2Keys.submitted(this.tenant, jobId)))?.text());
  }

  /**
   * The final record, from KV when it has it (fast, possibly stale only in that it may not have
   * the record yet), otherwise from R2 (strongly consistent). Undefined while the job runs.
   */
  async readFinished(jobId: string): Promise<JobRecord | undefined> {
    const cached = finalOnly(parseRecord(await this.kv.get(kvKeys.job(this.tenant, jobId))));
    return cached ?? this.readFinishedFromR2(jobId);
  }

  /** The final record from R2 only: what a check that must not miss a finish reads. */
  async readFinishedFromR2(jobId: string): Promise<JobRecord | undefined> {
    return finalOnly(parseRecord(await (await this.bucket.get(r2Keys.record(this.tenant, jobId)))?.text()));
  }

  /** Publishes a final record: R2 (the lasting copy), then KV (a cache: a failed write only costs speed). */
  async publishFinal(record: JobRecord): Promise<void> {
    await this.bucket.put(r2Keys.record(this.tenant, record.id), JSON.stringify(record));
    await this.kv
      .put(kvKeys.job(this.tenant, record.id), JSON.stringify(record), { expirationTtl: this.retentionSeconds })
      .catch((error: unknown) => console.warn(`job ${record.id}: KV cache write failed`, error));
  }

  /** Stores the full request (env values, stdin, content) of a job its coordinator did not take at submit. */
  async saveRequest(jobId: string, request: JobRequest): Promise<void> {
    await this.bucket.put(r2Keys.request(this.tenant, jobId), JSON.stringify(request));
  }

  async readRequest(jobId: string): Promise<JobRequest | undefined> {
    const object = await this.bucket.get(r2Keys.request(this.tenant, jobId));
    if (!object) return undefined;
    const parsed = JobRequest.safeParse(JSON.parse(await object.text()));
    return parsed.success ? parsed.data : undefined;
  }

  /**
   * What a finished job leaves behind that must go: a stored request (it holds env values) and
   * its entry on the sweeper's worklist. The caller waits WRITE_SPACING_MS after the submit.
   */
  async removeLeftovers(record: JobRecord): Promise<void> {
    await this.bucket.delete([
      r2Keys.request(this.tenant, record.id),
      r2Keys.activeEntry(sandboxKey(this.tenant, record.sandboxId), record.id),
    ]);
  }

  /** How many of this tenant's jobs are queued or running, counting no further than `max`. */
  async countActive(max: number): Promise<number> {
    // Sandbox keys start with `{tenant}.`, and tenant IDs hold no '.', so this prefix is one tenant's.
    let count = 0;
    let cursor: string | undefined;
    do {
      const listing = await this.bucket.list({
        prefix: `${r2Keys.activePrefix}${this.tenant}.`,
        cursor,
        limit: Math.min(max - count, 1000),
      });
      count += listing.objects.length;
      cursor = listing.truncated ? listing.cursor : undefined;
    } while (cursor && count < max);
    return count;
  }
}

/** Only a finished record is final (a record written under the earlier layout may not be). */
function finalOnly(record: JobRecord | undefined): JobRecord | undefined {
  return record && isTerminal(record.status) ? record : undefined;
}

function parseRecord(text: string | null | undefined): JobRecord | undefined {
  if (text === null || text === undefined) return undefined;
  const parsed = JobRecord.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Unfinished jobs of every tenant, grouped by sandbox key, from one page of the worklist: what
 * the sweeper checks on. Returns the cursor of the next page, if any.
 */
export async function listActivePage(bucket: R2Bucket, cursor?: string): Promise<{ bySandbox: Map<string, string[]>; cursor?: string }> {
  const bySandbox = new Map<string, string[]>();
  const listing = await bucket.list({ prefix: r2Keys.activePrefix, cursor, limit: 1000 });
  for (const object of listing.objects) {
    const [key, jobId] = object.key.slice(r2Keys.activePrefix.length).split("/");
    if (!key || !jobId) continue;
    bySandbox.set(key, [...(bySandbox.get(key) ?? []), jobId]);
  }
  return { bySandbox, ...(listing.truncated ? { cursor: listing.cursor } : {}) };
}

/** The unfinished job IDs of one sandbox on the worklist (at most `max`). */
export async function listActiveForSandbox(bucket: R2Bucket, key: string, max: number): Promise<string[]> {
  const listing = await bucket.list({ prefix: `${r2Keys.activePrefix}${key}/`, limit: Math.min(max, 1000) });
  return listing.objects.map((object) => object.key.slice(object.key.lastIndexOf("/") + 1));
}
