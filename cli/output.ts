/** How the CLI prints: JSON for programs (--json), short lines for people. */
import type { JobView } from "../client";

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

export function formatDuration(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** The last `count` lines of a text. */
export function lastLines(text: string, count: number): string[] {
  const lines = text.replace(/\n$/, "").split("\n");
  return text.trim() === "" ? [] : lines.slice(-count);
}
