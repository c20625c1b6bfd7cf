/**
 * The gate of a pipeline job (one with `needs`). By its `when`: `on_success` runs once every job
 * it needs has passed (succeeded, or failed with `allowFailure`) and is skipped as soon as one
 * has not; `always` runs once all have finished, whatever their outcome; `on_failure` runs once
 * all have finished if one did not pass, and is skipped (WHEN_NOT_MET) if all did. A needed job
 * has finished once its final record is in R2 (strongly consistent; written before its
 * dependents are woken).
 */
import { type JobError, type JobRecord, WHEN_NOT_MET } from "../schemas/job";
import type { JobStore } from "../storage/jobStore";

export type NeedsVerdict =
  | { kind: "run" }
  | { kind: "wait"; waitingFor: string[] }
  | { kind: "skip"; because: JobRecord[]; error: JobError };

/** Whether a finished need lets an `on_success` dependent run. */
const passed = (need: JobRecord) => need.status === "succeeded" || need.allowFailure;

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
  const failed = needed.flatMap(({ final }) => (final && !passed(final) ? [final] : []));
  if (record.when === "on_success" && failed.length > 0) return { kind: "skip", because: failed, error: skippedError(failed) };
  // A needed job that is gone can never finish now: it counts as one that did not pass.
  const gone = needed.some(({ exists }) => !exists);
  if (record.when === "on_success" && gone) return { kind: "skip", because: [], error: skippedError([]) };
  const unfinished = needed.filter(({ final, exists }) => final === undefined && exists).map(({ jobId }) => jobId);
  if (unfinished.length > 0) return { kind: "wait", waitingFor: unfinished };
  if (record.when === "on_failure" && failed.length === 0 && !gone) {
    return {
      kind: "skip",
      because: [],
      error: { code: WHEN_NOT_MET, message: "Not run: it runs on_failure, and every job it needs succeeded" },
    };
  }
  return { kind: "run" };
}

/** The record's error for a skipped job, naming what it needed. */
export function skippedError(because: JobRecord[]): JobError {
  const names = because.map((need) => `${need.name ?? need.id} (${need.status}${need.error ? `: ${need.error.code}` : ""})`);
  return {
    code: "SKIPPED",
    message: names.length > 0 ? `Not run: it needs ${names.join(", ")}, which did not succeed` : "Not run: a job it needs is gone",
  };
}
