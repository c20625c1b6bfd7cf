/**
 * Checks a batch's `name`/`needs` graph and orders it: unknown names and cycles are a 400 that
 * names them; otherwise the jobs get their IDs in a dependency order (a job after everything it
 * needs, else in array order). IDs order each sandbox's queue, so a job never waits in line
 * behind a job that waits for it.
 */
import type { BatchEntry } from "../schemas/job";
import { ApiError, ErrorCode } from "./errors";

/** Array indexes in the order the jobs get their IDs, and each job's needs as indexes. */
export interface BatchPlan {
  order: number[];
  needs: number[][];
}

export function planBatch(entries: BatchEntry[]): BatchPlan {
  const byName = new Map<string, number>();
  const duplicates = new Set<string>();
  entries.forEach((entry, index) => {
    if (entry.name === undefined) return;
    if (byName.has(entry.name)) duplicates.add(entry.name);
    byName.set(entry.name, index);
  });
  // Every problem of the names at once, so a pipeline is fixed in one round rather than one per error.
  const problems: string[] = [];
  if (duplicates.size > 0) problems.push(`Job names must be unique in a batch; repeated: ${[...duplicates].join(", ")}`);
  const unknown = new Set(entries.flatMap((entry) => entry.needs.filter((name) => !byName.has(name))));
  if (unknown.size > 0) problems.push(`needs names no job of this batch: ${[...unknown].join(", ")}`);
  const needs = entries.map((entry, index) => {
    // A job whose artifacts are an input is needed too: they are copied once it has succeeded.
    const inputNames = inputSources(entry).filter((from) => byName.has(from));
    const named = [...entry.needs, ...inputNames];
    if (entry.name !== undefined && named.includes(entry.name)) problems.push(`Job ${entry.name} needs itself`);
    return [...new Set(named.filter((name) => byName.has(name)).map((name) => byName.get(name) ?? index))];
  });
  for (const [index, entry] of entries.entries()) {
    if (entry.when === "on_failure" && entry.needs.length === 0 && (needs[index] ?? []).length === 0) {
      problems.push(`Job ${entry.name ?? "(unnamed)"} runs on_failure but needs no job: name the jobs whose failure it handles`);
    }
  }
  if (problems.length > 0) throw invalid(problems.join("; "));

  // Kahn's algorithm, always taking the earliest ready job, so independent jobs keep array order.
  const waitingOn = needs.map((list) => list.length);
  const dependents = entries.map((): number[] => []);
  needs.forEach((list, index) => {
    for (const need of list) dependents[need]?.push(index);
  });
  const ready = entries.map((_, index) => index).filter((index) => waitingOn[index] === 0);
  const order: number[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const next = ready.shift();
    if (next === undefined) break;
    order.push(next);
    for (const dependent of dependents[next] ?? []) {
      const left = (waitingOn[dependent] ?? 0) - 1;
      waitingOn[dependent] = left;
      if (left === 0) ready.push(dependent);
    }
  }
  if (order.length < entries.length) {
    const cycle = entries.flatMap((entry, index) => (order.includes(index) ? [] : [entry.name ?? `jobs[${index}]`]));
    throw invalid(`needs form a cycle among: ${cycle.join(", ")}`);
  }
  return { order, needs };
}

/** The `from` of a job's inputs: names of this batch's jobs, or job IDs. */
export function inputSources(entry: Pick<BatchEntry, "job">): string[] {
  return entry.job.type === "run" ? entry.job.inputs.map((input) => input.from) : [];
}

function invalid(message: string): ApiError {
  return new ApiError(400, ErrorCode.INVALID_REQUEST, message);
}
