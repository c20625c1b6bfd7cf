/**
 * Finishing a job: the one way a final record is written, by the runner, the consumer's
 * dead-letter handling and the sweeper alike.
 */
import type { JobRecord } from "../schemas/job";
import type { JobStore, VersionedRecord } from "../storage/jobStore";
import type { JobOutcome } from "./executeJob";
import type { QueuedJob, RunOutcome } from "./jobTypes";
import type { KvCacheScheduler } from "./kvCache";

export interface FinishDeps {
  store: JobStore;
  kvCache: KvCacheScheduler;
  /** Wakes anyone long-polling the job; a lost signal only delays them. */
  announceFinished: (record: JobRecord) => Promise<void>;
}

/**
 * Writes the final record (R2 first, KV once its spacing allows), takes the job off the active
 * list, drops a request stored in R2, and wakes anyone waiting for the job.
 */
export async function finish(
  deps: FinishDeps,
  version: VersionedRecord,
  job: Pick<QueuedJob, "kvWrittenAt" | "request">,
  outcome: Partial<JobOutcome> & Pick<JobRecord, "status">,
): Promise<RunOutcome> {
  const finishedAt = new Date();
  const startedAt = version.record.startedAt ? Date.parse(version.record.startedAt) : null;
  const final: JobRecord = {
    ...version.record,
    ...outcome,
    finishedAt: finishedAt.toISOString(),
    durationMs: startedAt === null ? null : finishedAt.getTime() - startedAt,
    leaseUntil: null,
  };
  const written = await deps.store.replace(version, final);
  if (!written) return { kind: "retry", delayMs: 0, reason: "job record changed while finishing it" };
  await Promise.all([
    deps.kvCache.finished(final, job.kvWrittenAt),
    deps.store.markInactive(final),
    // Only a request too large for the message was stored; it holds env values and content.
    job.request === undefined && deps.store.deleteRequest(final.id),
    deps.announceFinished(final),
  ]);
  return { kind: "done", reason: `job ${final.status}` };
}
