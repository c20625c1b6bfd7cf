/**
 * A tenant's job objects in R2 and KV, each written once: the records of a submit's jobs as
 * submitted (one object per submit; it names each job's sandbox, so a poll finds its coordinator
 * without reading anything that changes), the final record, and a request too large for its
 * coordinator's table or not taken at submit. KV holds the final record
 * only, for fast polls: it is eventually consistent, and a finished record never changes.
 * A job's changing state (queued, running, attempts, cancel) lives in its sandbox's coordinator.
 */
import { z } from "zod";
import { isTerminal, JobRecord, JobRequest } from "../schemas/job";
import { kvKeys, r2Keys, sandboxKey } from "./layout";

/** KV and R2 take one write per second per key; this margin covers clock skew between isolates. */
export const WRITE_SPACING_MS = 1100;

/** One submit's object: the range of job IDs it holds, and its jobs once read. */
interface SubmitObject {
  key: string;
  first: string;
  last: string;
  jobs?: Promise<JobRecord[]>;
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
   * The submits listed by this store, by their time prefix, each read once: a batch's jobs come
   * from one object, and lookups of many of them at once share one listing and one read.
   */
  private readonly submits = new Map<string, Promise<SubmitObject[]>>();

  /**
   * Records the jobs of one submit as submitted, in one object (the jobs of a submit share the
   * time part of their IDs, which names it): what names each job's sandbox for later polls.
   */
  async saveSubmitted(records: JobRecord[]): Promise<void> {
    const byTime = new Map<string, JobRecord[]>();
    for (const record of records) {
      const prefix = r2Keys.submitPrefix(this.tenant, record.id);
      byTime.set(prefix, [...(byTime.get(prefix) ?? []), record]);
    }
    await Promise.all(
      [...byTime.values()].map((group) => {
        const ids = group.map((record) => record.id).sort();
        const submit: Submit = { jobs: group };
        return this.bucket.put(r2Keys.submit(this.tenant, ids[0] ?? "", ids[ids.length - 1] ?? ""), JSON.stringify(submit));
      }),
    );
  }

  /** The record as submitted (status queued): what a job its coordinator has not taken yet looks like. */
  async readSubmitted(jobId: string): Promise<JobRecord | undefined> {
    const prefix = r2Keys.submitPrefix(this.tenant, jobId);
    const inRange = (candidate: SubmitObject) => candidate.first <= jobId && jobId <= candidate.last;
    const cached = this.submits.get(prefix);
    let submit =
      cached &&
      (await cached.then(
        (listed) => listed.find(inRange),
        () => undefined,
      ));
    if (!submit) {
      // Not in an earlier listing (the submit may have been stored since, or the listing failed): listed again.
      const listed = this.listSubmits(prefix);
      this.submits.set(prefix, listed);
      submit = (await listed).find(inRange);
    }
    if (!submit) return undefined;
    const object = submit;
    object.jobs ??= this.bucket.get(object.key).then(async (read) => parseSubmit(await read?.text()));
    // A failed read is not kept: the next lookup reads again.
    return (
      await object.jobs.catch((error: unknown) => {
        object.jobs = undefined;
        throw error;
      })
    ).find((record) => record.id === jobId);
  }

  private async listSubmits(prefix: string): Promise<SubmitObject[]> {
    const listing = await this.bucket.list({ prefix });
    return listing.objects.flatMap((object) => {
      const match = /([0-9A-Z]{26})-([0-9A-Z]{26})\.json$/.exec(object.key);
      return match?.[1] && match[2] ? [{ key: object.key, first: match[1], last: match[2] }] : [];
    });
  }

  /** Puts a job its coordinator did not take at submit on the sweeper's worklist, until it ends. */
  async markUndelivered(record: JobRecord): Promise<void> {
    await this.bucket.put(r2Keys.undeliveredEntry(sandboxKey(this.tenant, record.sandboxId), record.id), "");
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
   * What a finished job may leave behind in R2 that must go: a stored request (it holds env
   * values) and its entry on the sweeper's worklist. The caller waits WRITE_SPACING_MS after
   * they were written.
   */
  async removeLeftovers(record: JobRecord): Promise<void> {
    await this.bucket.delete([
      r2Keys.request(this.tenant, record.id),
      r2Keys.undeliveredEntry(sandboxKey(this.tenant, record.sandboxId), record.id),
    ]);
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

/** One submit's jobs as submitted (storage/layout.ts `submit`). */
const Submit = z.object({ jobs: z.array(JobRecord) });
type Submit = z.infer<typeof Submit>;

function parseSubmit(text: string | undefined): JobRecord[] {
  if (text === undefined) return [];
  const parsed = Submit.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data.jobs : [];
}

/** Jobs not taken at submit and not finished yet, grouped by sandbox key, one page of the worklist at a time. */
export async function listUndeliveredPage(
  bucket: R2Bucket,
  cursor?: string,
): Promise<{ bySandbox: Map<string, string[]>; cursor?: string }> {
  const bySandbox = new Map<string, string[]>();
  const listing = await bucket.list({ prefix: r2Keys.undeliveredPrefix, cursor, limit: 1000 });
  for (const object of listing.objects) {
    const [key, jobId] = object.key.slice(r2Keys.undeliveredPrefix.length).split("/");
    if (!key || !jobId) continue;
    bySandbox.set(key, [...(bySandbox.get(key) ?? []), jobId]);
  }
  return { bySandbox, ...(listing.truncated ? { cursor: listing.cursor } : {}) };
}

/** Every tenant ever admitted, one page at a time: where the sweeper finds the sandboxes with work. */
export async function listTenantsPage(bucket: R2Bucket, cursor?: string): Promise<{ tenants: string[]; cursor?: string }> {
  const listing = await bucket.list({ prefix: r2Keys.tenantRegistryPrefix, cursor, limit: 1000 });
  return {
    tenants: listing.objects.map((object) => object.key.slice(r2Keys.tenantRegistryPrefix.length)),
    ...(listing.truncated ? { cursor: listing.cursor } : {}),
  };
}
