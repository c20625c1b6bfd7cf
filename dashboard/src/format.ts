/** How times, durations, sizes and statuses read on the page. */
import type { BatchStatus, JobStatus, JobView } from "../../schemas/job";
import { el } from "./dom";

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A time as the local clock shows it, with the date when it is not today. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "–";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Milliseconds between two times of a record, or null while one is missing. */
export function between(from: string | null, to: string | null): number | null {
  return from && to ? Date.parse(to) - Date.parse(from) : null;
}

/** A status as a coloured badge; `data-status` carries the raw value for styles and tests. */
export function statusBadge(status: JobStatus | BatchStatus, cancelled = false): HTMLElement {
  const label = cancelled ? "cancelled" : status.replace("_", " ");
  return el("span", { class: `badge status-${cancelled ? "cancelled" : status}`, "data-status": status }, label);
}

export function shortId(id: string): string {
  return id.length > 10 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id;
}

type JobState = { status: JobStatus; error: { code: string } | null; allowFailure?: boolean };

/** A cancelled job is `failed` with error CANCELLED; the page calls it cancelled. */
export function isCancelled(job: JobState): boolean {
  return job.error?.code === "CANCELLED";
}

/** A job's state as the page words it; a failure its batch allowed says so, as the CLI's summary does. */
export function stateLabel(job: JobState): string {
  if (isCancelled(job)) return "cancelled";
  const label = job.status.replace("_", " ");
  return job.allowFailure && (job.status === "failed" || job.status === "timed_out") ? `${label} (allowed)` : label;
}

export function jobBadge(job: JobState): HTMLElement {
  return statusBadge(job.status, isCancelled(job));
}

/** What a job is called on the page: its name in its batch, else what it runs. */
export function jobTitle(job: JobView): string {
  if (job.name) return job.name;
  if (job.request.type === "run") return job.request.command.length > 60 ? `${job.request.command.slice(0, 57)}…` : job.request.command;
  return `${job.request.op} ${job.request.path}`;
}
