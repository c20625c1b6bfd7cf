/**
 * Which jobs of a finished batch run again, and how (`POST /v1/batches/{id}/rerun`). With
 * `failed`, the jobs that did not succeed (a skipped `on_failure` job whose condition did not
 * hold aside) and everything that needs them, directly or not; otherwise all of them. A rerun job
 * keeps its needs on the jobs that run again; what it needed of the jobs that succeeded is
 * already done, and its inputs from them are taken from those jobs by ID.
 */
import type { CipherKey } from "../access/secretCipher";
import { type BatchEntry, type JobRecord, WHEN_NOT_MET } from "../schemas/job";
import { readBatchRequest } from "../storage/batchRequests";
import { ApiError, ErrorCode } from "./errors";
import { inputSources } from "./pipelinePlan";

/** The batch's jobs as submitted, from its stored request (storage/batchRequests.ts); an ApiError saying why not. */
export async function submittedEntries(
  bucket: R2Bucket,
  keys: CipherKey[],
  tenant: string,
  batchId: string,
  jobCount: number,
): Promise<BatchEntry[]> {
  const stored = await readBatchRequest(bucket, tenant, batchId, keys);
  if (stored !== undefined && "unreadable" in stored) {
    throw new ApiError(
      409,
      ErrorCode.REQUEST_UNREADABLE,
      stored.unreadable === "withheld"
        ? `Batch ${batchId} carried env values, stdin or file content, which are kept for a rerun only encrypted, and SECRETS_ENCRYPTION_KEY was not set: submit it again`
        : `Batch ${batchId}'s stored request was encrypted under a key no longer in SECRETS_ENCRYPTION_KEY: submit it again`,
    );
  }
  if (stored === undefined || stored.jobs.length !== jobCount) {
    throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `Batch ${batchId} has no stored request to run again (submitted by an older version)`);
  }
  return stored.jobs;
}

/** `entries` and `records` in the batch's order (its manifest's). */
export function planRerun(entries: BatchEntry[], records: JobRecord[], onlyFailed: boolean): BatchEntry[] {
  const unfinished = records.filter((record) => !["succeeded", "failed", "timed_out", "skipped"].includes(record.status));
  if (unfinished.length > 0) {
    throw new ApiError(
      409,
      ErrorCode.JOB_NOT_FINISHED,
      `The batch is still running (${unfinished.length} jobs unfinished); run it again once it has finished`,
    );
  }
  const names = entries.map((entry) => entry.name);
  const again = new Set<number>();
  records.forEach((record, index) => {
    const passed = record.status === "succeeded" || (record.status === "skipped" && record.error?.code === WHEN_NOT_MET);
    if (!onlyFailed || !passed) again.add(index);
  });
  // Everything that needs a job that runs again runs again too (a report job after the tests).
  for (let grew = true; grew; ) {
    grew = false;
    entries.forEach((entry, index) => {
      if (again.has(index)) return;
      const uses = [...entry.needs, ...inputSources(entry)];
      if (uses.some((name) => [...again].some((other) => names[other] === name))) {
        again.add(index);
        grew = true;
      }
    });
  }
  const rerunNames = new Set([...again].flatMap((index) => (names[index] === undefined ? [] : [names[index]])));
  const idByName = new Map(
    entries.flatMap((entry, index) => (entry.name === undefined ? [] : [[entry.name, records[index]?.id ?? ""] as const])),
  );
  const planned = entries.flatMap((entry, index): BatchEntry[] => {
    if (!again.has(index)) return [];
    const needs = entry.needs.filter((name) => rerunNames.has(name));
    // Its condition was about jobs that do not run again: it has nothing to react to.
    if (entry.when === "on_failure" && needs.length === 0) return [];
    const job =
      entry.job.type === "run"
        ? {
            ...entry.job,
            inputs: entry.job.inputs.map((input) =>
              rerunNames.has(input.from) ? input : { ...input, from: idByName.get(input.from) ?? input.from },
            ),
          }
        : entry.job;
    return [{ ...entry, needs, job }];
  });
  if (planned.length === 0)
    throw new ApiError(409, ErrorCode.NOTHING_TO_RERUN, "Every job of the batch succeeded: there is nothing to run again");
  return planned;
}
