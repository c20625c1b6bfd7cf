/**
 * The gate of a pipeline job (one with `needs`): it runs only once every job it needs has
 * succeeded, and is skipped as soon as one of them ends any other way. A needed job has finished
 * once its final record is in R2 (strongly consistent; written before its dependents are woken).
 */
import type { JobRecord } from "../schemas/job";
import type { JobStore } from "../storage/jobStore";

export type NeedsVerdict = { kind: "run" } | { kind: "wait"; waitingFor: string[] } | { kind: "skip"; because: JobRecord[] };

export async function checkNeeds(store: JobStore, record: JobRecord): Promise<NeedsVerdict> {
  if (record.needs.length === 0) return { kind: "run" };
  const needed = await Promise.all(
    record.needs.map(async (jobId) => {
      const final = await store.readFinishedFromR2(jobId);
      // Not finished: unfinished if it was submitted, gone (past its retention, or never) if not.
      const exists = final !== undefined || (await store.readSubmitted(jobId)) !== undefined;
      return { jobId, final, exists };
    }),
  );
  const failed = needed.flatMap(({ final }) => (final && final.status !== "succeeded" ? [final] : []));
  if (failed.length > 0) return { kind: "skip", because: failed };
  // A needed job that is gone can never succeed now.
  if (needed.some(({ exists }) => !exists)) return { kind: "skip", because: [] };
  const unfinished = needed.filter(({ final }) => final === undefined).map(({ jobId }) => jobId);
  return unfinished.length > 0 ? { kind: "wait", waitingFor: unfinished } : { kind: "run" };
}

/** The record's error for a skipped job, naming what it needed. */
export function skippedError(because: JobRecord[]): { code: string; message: string } {
  const names = because.map((need) => `${need.name ?? need.id} (${need.status}${need.error ? `: ${need.error.code}` : ""})`);
  return {
    code: "SKIPPED",
    message: names.length > 0 ? `Not run: it needs ${names.join(", ")}, which did not succeed` : "Not run: a job it needs is gone",
  };
}
