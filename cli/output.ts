/** How the CLI prints: JSON for programs (--json), short lines for people. */
import type { BatchView, JobView } from "../client";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One line about a job: its id, sandbox, status, and how it ended. */
export function jobLine(job: JobView): string {
  const parts = [`${job.id}`, job.name ? `${job.name} (${job.sandboxId})` : job.sandboxId, job.status];
  if (job.exitCode !== null) parts.push(`exit ${job.exitCode}`);
  if (job.durationMs !== null) parts.push(formatDuration(job.durationMs));
  if (job.error) parts.push(`${job.error.code}: ${job.error.message}`);
  return parts.join("  ");
}

/** A batch: its status and how many jobs succeeded, then one line per job. */
export function batchText(batch: BatchView): string {
  const succeeded = batch.jobs.filter((job) => job.status === "succeeded").length;
  const head = `batch ${batch.batchId}  ${batch.status}  ${succeeded} of ${plural(batch.jobs.length, "job")} succeeded  created ${batch.createdAt}`;
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
