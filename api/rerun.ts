/**
 * Which jobs of a finished batch run again, and how (`POST /v1/batches/{id}/rerun`). With
 * `failed`, the jobs that did not succeed (a skipped `on_failure` job whose condition did not
 * hold aside) and everything that needs them, directly or not; otherwise all of them. A rerun job
 * keeps its needs on the jobs that run again; what it needed of the jobs that succeeded is
 * already done, and its inputs from them are taken from those jobs by ID.
 */
import { type BatchEntry, type JobRecord, WHEN_NOT_MET } from "../schemas/job";
import { ApiError, ErrorCode } from "./errors";
import { inputSources } from "./pipelinePlan";

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
