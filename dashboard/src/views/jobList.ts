/** The jobs page: every job of the tenant in the time window, filtered, newest first, kept current. */
import type { ArtifactSandboxClient, JobView } from "../../../client";
import { el, show } from "../dom";
import { formatDuration, formatTime, jobBadge, jobTitle, shortId } from "../format";
import { keepFresh } from "../live";
import { batchHref, jobHref, type ListFilters } from "../routes";
import { loadTenantJobs, refreshWaitMs } from "../tenantJobs";
import { filterBar } from "./filterBar";

/** After a failed refresh. */
const RETRY_MS = 3_000;

export async function renderJobList(
  root: HTMLElement,
  client: ArtifactSandboxClient,
  filters: ListFilters,
  signal: AbortSignal,
): Promise<void> {
  const sandboxes = await client.listSandboxes();
  const status = el("div", { class: "live-status" });
  const table = el("div", { class: "table-wrap" });
  show(root, el("h1", {}, "Jobs"), filterBar("jobs", filters, sandboxes), status, table);
  await keepFresh(
    async () => {
      const { jobs, truncatedSandboxes, requests } = await loadTenantJobs(client, filters, signal);
      show(
        table,
        jobs.length === 0 ? el("p", { class: "empty" }, "No jobs match these filters.") : jobTable(jobs),
        truncationNote(truncatedSandboxes),
      );
      return { again: true, waitMs: refreshWaitMs(requests) };
    },
    RETRY_MS,
    signal,
    status,
  );
}

/** Jobs as table rows; a batch's own page leaves out the batch column. */
export function jobTable(jobs: JobView[], options: { batchColumn: boolean } = { batchColumn: true }): HTMLTableElement {
  const headings = ["Job", "Sandbox", "Status", options.batchColumn ? "Batch" : null, "Created", "Duration", "Exit"];
  return el(
    "table",
    { class: "jobs" },
    el("thead", {}, el("tr", {}, ...headings.map((heading) => (heading === null ? null : el("th", {}, heading))))),
    el(
      "tbody",
      {},
      ...jobs.map((job) =>
        el(
          "tr",
          { "data-job-id": job.id },
          el(
            "td",
            {},
            el("a", { href: jobHref(job.id), title: job.id }, jobTitle(job)),
            el("div", { class: "muted mono" }, shortId(job.id)),
          ),
          el("td", { class: "mono" }, job.sandboxId),
          el("td", {}, jobBadge(job)),
          options.batchColumn
            ? el("td", {}, job.batchId ? el("a", { href: batchHref(job.batchId), class: "mono" }, shortId(job.batchId)) : "–")
            : null,
          el("td", {}, formatTime(job.createdAt)),
          el("td", {}, formatDuration(job.durationMs)),
          el("td", { class: "mono" }, job.exitCode ?? "–"),
        ),
      ),
    ),
  );
}

function truncationNote(sandboxIds: string[]): HTMLElement | null {
  if (sandboxIds.length === 0) return null;
  return el("p", { class: "muted" }, `Showing the newest 500 jobs of ${sandboxIds.join(", ")}; narrow the time window to see older ones.`);
}
