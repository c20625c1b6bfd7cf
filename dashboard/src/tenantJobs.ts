/**
 * The tenant's jobs across its sandboxes. The API lists jobs per sandbox only (no tenant-wide
 * list), so this asks every sandbox (or the one filtered on) for its newest jobs, page by page
 * until a page reaches past the time window, and merges them newest first.
 */
import type { ArtifactSandboxClient, JobView } from "../../client";
import { type ListFilters, SINCE_MS } from "./routes";

/** Pages of 100 per sandbox at most: a busy sandbox shows its newest 500 jobs in the window. */
const MAX_PAGES_PER_SANDBOX = 5;
const PAGE_SIZE = 100;

export interface TenantJobs {
  jobs: JobView[];
  /** Sandboxes with more jobs in the window than were fetched. */
  truncatedSandboxes: string[];
  /** Requests this took: a list's next refresh waits in proportion. */
  requests: number;
}

/**
 * How long a list waits before refreshing: 3 s, or longer when a refresh takes many requests, so
 * that a refreshing page averages at most one request per 50 ms (200 per 10 s, a third of a
 * tenant's rate limit).
 */
export function refreshWaitMs(requests: number): number {
  return Math.max(3_000, requests * 50);
}

export async function loadTenantJobs(client: ArtifactSandboxClient, filters: ListFilters, signal: AbortSignal): Promise<TenantJobs> {
  const sandboxIds = filters.sandboxId ? [filters.sandboxId] : (await client.listSandboxes()).map((sandbox) => sandbox.sandboxId);
  const cutoff = Date.now() - SINCE_MS[filters.since];
  const perSandbox = await Promise.all(sandboxIds.map((sandboxId) => loadSandboxJobs(client, sandboxId, filters, cutoff, signal)));
  const jobs = perSandbox
    .flatMap((result) => result.jobs)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  return {
    jobs,
    truncatedSandboxes: perSandbox.filter((result) => result.truncated).map((result) => result.sandboxId),
    requests: (filters.sandboxId ? 0 : 1) + perSandbox.reduce((sum, result) => sum + result.pages, 0),
  };
}

async function loadSandboxJobs(
  client: ArtifactSandboxClient,
  sandboxId: string,
  filters: ListFilters,
  cutoff: number,
  signal: AbortSignal,
): Promise<{ sandboxId: string; jobs: JobView[]; truncated: boolean; pages: number }> {
  const jobs: JobView[] = [];
  let cursor: string | undefined;
  let pages = 0;
  while (pages < MAX_PAGES_PER_SANDBOX && !signal.aborted) {
    const answer = await client.listJobs(sandboxId, { status: filters.status, limit: PAGE_SIZE, cursor });
    pages += 1;
    const inWindow = answer.jobs.filter((job) => Date.parse(job.createdAt) >= cutoff);
    jobs.push(...inWindow);
    // Newest first: once a page reaches past the window, the older pages are outside it too.
    if (answer.nextCursor === null || inWindow.length < answer.jobs.length) return { sandboxId, jobs, truncated: false, pages };
    cursor = answer.nextCursor;
  }
  return { sandboxId, jobs, truncated: true, pages };
}
