/** The page's routes live in the URL's hash (`#/jobs/{id}`), so static assets serve every page. */
import { JobStatus } from "../../schemas/job";

/** How far back a list looks; "all" is as far as retention keeps records. */
export const SINCE_VALUES = ["15m", "1h", "24h", "7d", "all"] as const;
export type Since = (typeof SINCE_VALUES)[number];
export const SINCE_MS: Record<Since, number> = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  all: Number.POSITIVE_INFINITY,
};

export interface ListFilters {
  status: JobStatus | undefined;
  sandboxId: string | undefined;
  since: Since;
}

export type Route =
  | { view: "jobs"; filters: ListFilters }
  | { view: "batches"; filters: ListFilters }
  | { view: "job"; jobId: string }
  | { view: "batch"; batchId: string }
  | { view: "sandboxes" };

const DEFAULT_SINCE: Since = "24h";

export function isSince(value: unknown): value is Since {
  return SINCE_VALUES.some((since) => since === value);
}

function filtersFrom(query: URLSearchParams): ListFilters {
  const status = JobStatus.safeParse(query.get("status"));
  const since = query.get("since");
  return {
    status: status.success ? status.data : undefined,
    sandboxId: query.get("sandbox") || undefined,
    since: isSince(since) ? since : DEFAULT_SINCE,
  };
}

export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter((part) => part !== "");
  const query = new URLSearchParams(search);
  if (parts[0] === "jobs" && parts[1]) return { view: "job", jobId: decodeURIComponent(parts[1]) };
  if (parts[0] === "batches" && parts[1]) return { view: "batch", batchId: decodeURIComponent(parts[1]) };
  if (parts[0] === "batches") return { view: "batches", filters: filtersFrom(query) };
  if (parts[0] === "sandboxes") return { view: "sandboxes" };
  return { view: "jobs", filters: filtersFrom(query) };
}

export function listHref(view: "jobs" | "batches", filters: Partial<ListFilters>): string {
  const query = new URLSearchParams();
  if (filters.status) query.set("status", filters.status);
  if (filters.sandboxId) query.set("sandbox", filters.sandboxId);
  if (filters.since && filters.since !== DEFAULT_SINCE) query.set("since", filters.since);
  const search = query.size > 0 ? `?${query}` : "";
  return `#/${view}${search}`;
}

export const jobHref = (jobId: string): string => `#/jobs/${encodeURIComponent(jobId)}`;
export const batchHref = (batchId: string): string => `#/batches/${encodeURIComponent(batchId)}`;
