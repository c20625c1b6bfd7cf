/**
 * Job records across KV and R2, within KV's limits.
 *
 * R2 holds the authoritative record: strongly consistent, so a finished job reads as finished
 * at once, and conditional puts let exactly one consumer move a job forward. KV caches the
 * finished record for fast polling: a poll trusts KV only for a finished record, which can never
 * change again, and reads anything else from R2. So KV is written once per job, when it ends
 * (an unfinished record there would never be trusted; a job cancelled while queued has none,
 * and its polls read R2), well within KV's one write per second per key.
 */
import { isTerminal, JobRecord, JobRequest, type JobStatus } from "../schemas/job";
import { kvKeys, r2Keys, sandboxKey } from "./layout";

/** KV's limit: one write per second to a key, plus a margin for clock skew between isolates. */
export const KV_WRITE_SPACING_MS = 1100;

export interface VersionedRecord {
  record: JobRecord;
  etag: string;
}

export interface JobPage {
  jobs: JobRecord[];
  nextCursor: string | null;
}

/** Each tenant's job store, for the parts that serve every tenant (the consumer, the sweeper, the KV cache). */
export type JobStores = (tenant: string) => JobStore;

export function jobStores(kv: KVNamespace, bucket: R2Bucket, retentionSeconds: number): JobStores {
  return (tenant) => new JobStore(kv, bucket, retentionSeconds, tenant);
}

/** One tenant's jobs: every key it reads or writes carries the tenant (storage/layout.ts). */
export class JobStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly bucket: R2Bucket,
    private readonly retentionSeconds: number,
    readonly tenant: string,
  ) {}

  /**
   * Records a new job, and its request when that is too large to travel in the queue message.
   * Nothing goes to KV: a poll would not trust an unfinished record there (see above). Returns
   * the record's version, which its first claim can compare against.
   */
  async create(record: JobRecord, requestToStore?: JobRequest): Promise<VersionedRecord> {
    const [written] = await Promise.all([
      this.bucket.put(r2Keys.record(this.tenant, record.id), JSON.stringify(record)),
      this.bucket.put(r2Keys.sandboxIndexEntry(this.tenant, record.sandboxId, record.id), ""),
      this.bucket.put(r2Keys.activeEntry(sandboxKey(this.tenant, record.sandboxId), record.id), ""),
      requestToStore && this.saveRequest(record.id, requestToStore),
    ]);
    // An unconditional put answers with the object; null is only a failed condition.
    if (!written) throw new Error(`R2 did not store job ${record.id}'s record`);
    return { record, etag: written.etag };
  }

  /** The job as a client should see it, or undefined when unknown or past retention. */
  async get(jobId: string): Promise<JobRecord | undefined> {
    const cached = parseRecord(await this.kv.get(kvKeys.job(this.tenant, jobId)));
    const record = cached && isTerminal(cached.status) ? cached : (await this.getVersioned(jobId))?.record;
    if (!record || Date.parse(record.expiresAt) <= Date.now()) return undefined;
    return record;
  }

  /**
   * The authoritative record if it changed since `etag`; a cheap conditional read for polling
   * (no body comes back while the job is unchanged).
   */
  async getIfChanged(jobId: string, etag: string): Promise<VersionedRecord | "unchanged" | undefined> {
    const object = await this.bucket.get(r2Keys.record(this.tenant, jobId), { onlyIf: { etagDoesNotMatch: etag } });
    if (!object) return undefined;
    if (!("body" in object)) return "unchanged";
    const record = parseRecord(await object.text());
    return record && { record, etag: object.etag };
  }

  async getVersioned(jobId: string): Promise<VersionedRecord | undefined> {
    const object = await this.bucket.get(r2Keys.record(this.tenant, jobId));
    if (!object) return undefined;
    const record = parseRecord(await object.text());
    if (!record) return undefined;
    return { record, etag: object.etag };
  }

  /**
   * Replaces the record only if nobody changed it since `previous` was read. Returns the new
   * version, or undefined when another consumer got there first.
   */
  async replace(previous: VersionedRecord, record: JobRecord): Promise<VersionedRecord | undefined> {
    const written = await this.bucket.put(r2Keys.record(this.tenant, record.id), JSON.stringify(record), {
      onlyIf: { etagMatches: previous.etag },
    });
    if (!written) return undefined;
    return { record, etag: written.etag };
  }

  /** Copies a finished record to KV; the caller keeps to KV's one write per second per key. */
  async cacheFinished(record: JobRecord): Promise<void> {
    await this.kv.put(kvKeys.job(this.tenant, record.id), JSON.stringify(record), { expirationTtl: this.retentionSeconds });
  }

  /** Stores a job's full request (env values, stdin, content) until the job ends. */
  async saveRequest(jobId: string, request: JobRequest): Promise<void> {
    await this.bucket.put(r2Keys.request(this.tenant, jobId), JSON.stringify(request));
  }

  async readRequest(jobId: string): Promise<JobRequest | undefined> {
    const object = await this.bucket.get(r2Keys.request(this.tenant, jobId));
    if (!object) return undefined;
    const parsed = JobRequest.safeParse(JSON.parse(await object.text()));
    return parsed.success ? parsed.data : undefined;
  }

  /** The request holds env values, stdin and file content: it is not kept once the job ends. */
  async deleteRequest(jobId: string): Promise<void> {
    await this.bucket.delete(r2Keys.request(this.tenant, jobId));
  }

  /** Takes a finished job off the sweeper's worklist. */
  async markInactive(record: JobRecord): Promise<void> {
    await this.bucket.delete(r2Keys.activeEntry(sandboxKey(this.tenant, record.sandboxId), record.id));
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

  /** A sandbox's jobs, newest first; `cursor` is the last job ID of the previous page. */
  async listForSandbox(sandboxId: string, options: { status?: JobStatus; limit: number; cursor?: string }): Promise<JobPage> {
    const prefix = r2Keys.sandboxIndexPrefix(this.tenant, sandboxId);
    let startAfter = options.cursor ? r2Keys.sandboxIndexEntry(this.tenant, sandboxId, options.cursor) : undefined;
    const jobs: JobRecord[] = [];
    // Bounded scan: with a status filter most entries may not match, so a page can come back short.
    for (let page = 0; page < 10; page++) {
      const listing = await this.bucket.list({ prefix, startAfter, limit: options.status ? 100 : options.limit - jobs.length });
      const ids = listing.objects.map((object) => r2Keys.jobIdFromIndexEntry(object.key));
      const records = await Promise.all(ids.map((id) => this.get(id)));
      for (const [index, record] of records.entries()) {
        if (record && (!options.status || record.status === options.status)) jobs.push(record);
        if (jobs.length === options.limit) {
          const more = index < records.length - 1 || listing.truncated;
          return { jobs, nextCursor: more ? (ids[index] ?? null) : null };
        }
      }
      const last = listing.objects[listing.objects.length - 1];
      if (!listing.truncated || !last) return { jobs, nextCursor: null };
      startAfter = last.key;
    }
    const lastId = startAfter ? r2Keys.jobIdFromIndexEntry(startAfter) : null;
    return { jobs, nextCursor: lastId };
  }
}

function parseRecord(text: string | null): JobRecord | undefined {
  if (text === null) return undefined;
  const parsed = JobRecord.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/** Every unfinished job of every tenant, grouped by sandbox key: what the sweeper checks on. */
export async function listActiveEverywhere(bucket: R2Bucket): Promise<Map<string, string[]>> {
  const bySandbox = new Map<string, string[]>();
  let cursor: string | undefined;
  do {
    const listing = await bucket.list({ prefix: r2Keys.activePrefix, cursor, limit: 1000 });
    for (const object of listing.objects) {
      const [key, jobId] = object.key.slice(r2Keys.activePrefix.length).split("/");
      if (!key || !jobId) continue;
      bySandbox.set(key, [...(bySandbox.get(key) ?? []), jobId]);
    }
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
  return bySandbox;
}
