/**
 * The jobs of a running pipeline and their states: a table redrawn in place on a terminal
 * (log-update), otherwise (CI logs, pipes) one plain timestamped line per change, naming the job,
 * its sandbox and ID, and how it ended, never escape codes there.
 */
import logUpdate from "log-update";
import type { JobView } from "../client";
import { formatDuration, statusText, timestamp } from "./output";

export interface JobBoard {
  update(jobs: JobView[]): void;
  /** Leaves the last table on screen. */
  done(): void;
}

/** `lines`: plain lines even on a terminal, where other output (job logs) goes between them. */
export function jobBoard(stream: NodeJS.WriteStream, options: { lines?: boolean } = {}): JobBoard {
  // A terminal that reports no size (some CI pseudo-terminals) would have log-update clip the table away.
  const table = !options.lines && stream.isTTY && stream.rows > 0 && stream.columns > 0;
  return table ? new TableBoard() : new LineBoard(stream);
}

const label = (job: JobView) => job.name ?? job.id;

function detail(job: JobView): string {
  const parts: string[] = [];
  if (job.exitCode !== null) parts.push(`exit ${job.exitCode}`);
  if (job.durationMs !== null) parts.push(formatDuration(job.durationMs));
  if (job.error) parts.push(job.error.code);
  for (const cache of job.caches) parts.push(cacheText(cache));
  return parts.join(", ");
}

/** `cache deps-3f2a9c...: miss, saved`: a cache's key (its start: hashed keys are long) and how it went. */
function cacheText(cache: JobView["caches"][number]): string {
  const key = cache.key.length > 24 ? `${cache.key.slice(0, 21)}...` : cache.key;
  const result = cache.result === "partial" ? "partial hit" : cache.result;
  return `cache ${key}: ${result}${cache.saved ? ", saved" : ""}`;
}

class TableBoard implements JobBoard {
  update(jobs: JobView[]): void {
    const nameWidth = Math.max(4, ...jobs.map((job) => label(job).length));
    const sandboxWidth = Math.max(7, ...jobs.map((job) => job.sandboxId.length));
    const statusWidth = Math.max(9, ...jobs.map((job) => statusText(job).length));
    const row = (name: string, sandbox: string, status: string, rest: string) =>
      `${name.padEnd(nameWidth)}  ${sandbox.padEnd(sandboxWidth)}  ${status.padEnd(statusWidth)}  ${rest}`.trimEnd();
    logUpdate(
      [row("JOB", "SANDBOX", "STATUS", ""), ...jobs.map((job) => row(label(job), job.sandboxId, statusText(job), detail(job)))].join("\n"),
    );
  }

  done(): void {
    logUpdate.done();
  }
}

class LineBoard implements JobBoard {
  private readonly seen = new Map<string, string>();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(jobs: JobView[]): void {
    for (const job of jobs) {
      if (this.seen.get(job.id) === job.status) continue;
      this.seen.set(job.id, job.status);
      const rest = detail(job);
      this.stream.write(
        `${timestamp()} ${label(job)}: ${statusText(job)}${rest ? `  ${rest}` : ""}  (sandbox ${job.sandboxId}, job ${job.id})\n`,
      );
    }
  }

  done(): void {}
}
