/** How the CLI prints: JSON for programs (--json), short lines for people. */
import type { BatchView, JobView } from "../client";
import { isTerminal, WHEN_NOT_MET } from "../schemas/job";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A failure (or timeout) that `allowFailure` lets pass: it neither skips dependents nor fails the batch. */
export function failureAllowed(job: Pick<JobView, "status" | "allowFailure">): boolean {
  return job.allowFailure && isTerminal(job.status) && job.status !== "succeeded" && job.status !== "skipped";
}

/** A job skipped because its `when` did not hold (an `on_failure` job when nothing failed): not a failure. */
export function notNeeded(job: Pick<JobView, "status" | "error">): boolean {
  return job.status === "skipped" && job.error?.code === WHEN_NOT_MET;
}

/** A job's status as people read it: `failed (allowed)` for a failure its batch lets pass. */
export function statusText(job: Pick<JobView, "status" | "allowFailure">): string {
  return failureAllowed(job) ? `${job.status} (allowed)` : job.status;
}

/** One line about a job: its id, sandbox, status, and how it ended. */
export function jobLine(job: JobView): string {
  const parts = [`${job.id}`, job.name ? `${job.name} (${job.sandboxId})` : job.sandboxId, statusText(job)];
  if (job.exitCode !== null) parts.push(`exit ${job.exitCode}`);
  if (job.durationMs !== null) parts.push(formatDuration(job.durationMs));
  if (job.error) parts.push(`${job.error.code}: ${job.error.message}`);
  if (job.waitingReason) parts.push(job.waitingReason);
  return parts.join("  ");
}

/** How a batch's jobs ended: `3 of 5 jobs succeeded, 1 failure allowed, 1 not needed`. */
export function batchCounts(jobs: JobView[]): string {
  const succeeded = jobs.filter((job) => job.status === "succeeded").length;
  const allowed = jobs.filter(failureAllowed).length;
  const unneeded = jobs.filter(notNeeded).length;
  return [
    `${succeeded} of ${plural(jobs.length, "job")} succeeded`,
    ...(allowed > 0 ? [`${plural(allowed, "failure")} allowed`] : []),
    ...(unneeded > 0 ? [`${unneeded} not needed (when not met)`] : []),
  ].join(", ");
}

/** A batch: its status and how its jobs ended, then one line per job. */
export function batchText(batch: BatchView): string {
  const head = `batch ${batch.batchId}  ${batch.status}  ${batchCounts(batch.jobs)}  created ${batch.createdAt}`;
  return `${[head, ...batch.jobs.map((job) => `  ${jobLine(job)}`)].join("\n")}\n`;
}

export function formatDuration(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** "1 entry", "2 entries", "0 jobs": the noun agrees with its count. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** The time in UTC to the second (2026-01-02T15:04:05Z), for lines of a CI log that say when something changed. */
export function timestamp(now = new Date()): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/** The last `count` lines of a text. */
export function lastLines(text: string, count: number): string[] {
  const lines = text.replace(/\n$/, "").split("\n");
  return text.trim() === "" ? [] : lines.slice(-count);
}
