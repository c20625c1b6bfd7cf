/**
 * Ending a job: the one way, used by the runner, a cancel, the dead-letter handler and the
 * sweeper alike, all through the coordinator that holds the job. The end is one SQLite statement
 * in the coordinator (so nothing ends a job twice), which wakes its waiters at once; then the
 * final record is published, each object written once: R2, then KV, then the wake-up of the
 * jobs that need it. What a finished job leaves behind (a stored request, its worklist entry)
 * is removed once R2's one write per second per key allows. A publication that fails is tried
 * again by the coordinator's alarm; until then polls get the final record from the coordinator.
 */
import { tenantEventsFor } from "../events/tenantEvents";
import type { JobOutcome } from "../execution/executeJob";
import type { JobRecord } from "../schemas/job";
import { type JobStore, WRITE_SPACING_MS } from "../storage/jobStore";
import { type ManifestCache, wakeDependents } from "./dependents";
import type { JobTable } from "./jobTable";
import type { Signal } from "./signals";

/** A failed publication is tried again after this long (and so never writes a key twice within a second). */
const PUBLISH_RETRY_MS = 2000;

export type FinalOutcome = Partial<JobOutcome> & Pick<JobRecord, "status" | "error"> & Partial<Pick<JobRecord, "storedOutputAt">>;

/** The final record of a job as it stands, with what ended it. */
export function finalRecord(current: JobRecord, outcome: FinalOutcome): JobRecord {
  const finishedAt = new Date();
  const startedAt = current.startedAt ? Date.parse(current.startedAt) : null;
  return {
    ...current,
    ...outcome,
    finishedAt: finishedAt.toISOString(),
    durationMs: startedAt === null ? null : finishedAt.getTime() - startedAt,
    leaseUntil: null,
  };
}

export class JobFinisher {
  /** Jobs being published right now: a second pass must not write their keys again. */
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly table: JobTable,
    private readonly finished: Signal<true>,
    private readonly env: Env,
    private readonly storeFor: (tenant: string) => JobStore,
  ) {}

  /**
   * Ends an unfinished job (given `attempt`, only while that attempt holds it) and wakes its
   * waiters; the final record, or undefined when the job was not in that state.
   */
  finish(jobId: string, outcome: FinalOutcome, attempt?: number): JobRecord | undefined {
    const current = this.table.record(jobId);
    if (!current || (current.status !== "queued" && current.status !== "running")) return undefined;
    const final = finalRecord(current, outcome);
    if (!this.table.finish(final, attempt)) return undefined;
    this.finished.raise(jobId);
    return final;
  }

  /**
   * Publishes up to `limit` finished jobs (oldest first) and removes their leftovers when due;
   * returns the jobs it published.
   */
  async publish(limit: number): Promise<JobRecord[]> {
    const publishedNow: JobRecord[] = [];
    const manifests: ManifestCache = new Map();
    const pending = this.table.unpublished(limit + this.inFlight.size).filter(({ record }) => !this.inFlight.has(record.id));
    const due = pending.slice(0, limit);
    await Promise.all(
      due.map(async ({ record, published, submittedAt }) => {
        this.inFlight.add(record.id);
        try {
          const store = this.storeFor(record.tenant);
          if (!published) {
            await store.publishFinal(record);
            // Its event, webhooks and metrics: recorded once however often this is retried.
            await tenantEventsFor(this.env.TENANT_EVENTS, record.tenant).jobFinished(record);
            this.table.markPublished(record.id);
            publishedNow.push(record);
            await wakeDependents(this.env, record, manifests);
          }
          // Later passes (the alarm) remove what is not due yet.
          if (Date.now() >= submittedAt + WRITE_SPACING_MS) {
            await store.removeLeftovers(record);
            this.table.markCleaned(record.id);
          }
        } catch (error) {
          console.warn(`job ${record.id}: publishing its final record failed, will try again`, error);
          this.table.publishNotBefore(record.id, Date.now() + PUBLISH_RETRY_MS);
        } finally {
          this.inFlight.delete(record.id);
        }
      }),
    );
    return publishedNow;
  }
}
