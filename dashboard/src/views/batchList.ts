/**
 * The batches page. The API has no list of batches, so they are gathered from the jobs the
 * tenant's sandboxes list (a batch's jobs carry its batchId) in the time window.
 */
import type { ArtifactSandboxClient, JobView } from "../../../client";
import { batchStatus } from "../../../schemas/job";
import { el, show } from "../dom";
import { formatTime, shortId, statusBadge } from "../format";
import { keepFresh } from "../live";
import { batchHref, type ListFilters } from "../routes";
import { loadTenantJobs, refreshWaitMs } from "../tenantJobs";
import { filterBar } from "./filterBar";

/** After a failed refresh. */
const RETRY_MS = 3_000;

interface BatchSummary {
  batchId: string;
  jobs: JobView[];
  createdAt: string;
}

export async function renderBatchList(
  root: HTMLElement,
  client: ArtifactSandboxClient,
  filters: ListFilters,
  signal: AbortSignal,
): Promise<void> {
  const sandboxes = await client.listSandboxes();
  const status = el("div", { class: "live-status" });
  const table = el("div", { class: "table-wrap" });
  const note = el("p", { class: "muted" }, "A batch is listed by the jobs of it that match the filters; its page shows all of them.");
  show(root, el("h1", {}, "Batches"), filterBar("batches", filters, sandboxes), note, status, table);
  await keepFresh(
    async () => {
      // The status filter applies to the batch as a whole, so every job is fetched first.
      const { jobs, requests } = await loadTenantJobs(client, { ...filters, status: undefined }, signal);
      const batches = groupByBatch(jobs).filter((batch) => !filters.status || batch.jobs.some((job) => job.status === filters.status));
      show(table, batches.length === 0 ? el("p", { class: "empty" }, "No batches match these filters.") : batchTable(batches));
      return { again: true, waitMs: refreshWaitMs(requests) };
    },
    RETRY_MS,
    signal,
    status,
  );
}

function groupByBatch(jobs: JobView[]): BatchSummary[] {
  const batches = new Map<string, BatchSummary>();
  for (const job of jobs) {
    if (!job.batchId) continue;
    const batch = batches.get(job.batchId) ?? { batchId: job.batchId, jobs: [], createdAt: job.createdAt };
    batch.jobs.push(job);
    if (job.createdAt < batch.createdAt) batch.createdAt = job.createdAt;
    batches.set(job.batchId, batch);
  }
  // Newest batch first; a batch's jobs in submission order (their IDs are ULIDs).
  for (const batch of batches.values()) batch.jobs.sort((a, b) => (a.id < b.id ? -1 : 1));
  return [...batches.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
}

function batchTable(batches: BatchSummary[]): HTMLTableElement {
  return el(
    "table",
    { class: "batches" },
    el("thead", {}, el("tr", {}, ...["Batch", "Status", "Jobs", "Sandboxes", "Created"].map((heading) => el("th", {}, heading)))),
    el(
      "tbody",
      {},
      ...batches.map((batch) =>
        el(
          "tr",
          { "data-batch-id": batch.batchId },
          el("td", {}, el("a", { href: batchHref(batch.batchId), class: "mono", title: batch.batchId }, shortId(batch.batchId))),
          el("td", {}, statusBadge(batchStatus(batch.jobs))),
          el("td", {}, batch.jobs.map((job) => job.name ?? shortId(job.id)).join(", ")),
          el("td", { class: "mono" }, [...new Set(batch.jobs.map((job) => job.sandboxId))].join(", ")),
          el("td", {}, formatTime(batch.createdAt)),
        ),
      ),
    ),
  );
}
