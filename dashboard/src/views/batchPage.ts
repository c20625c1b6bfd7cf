/** A batch's page: its jobs as a graph of `needs` with their states, and as a table, updating live until all have finished. */
import type { ArtifactSandboxClient, BatchView } from "../../../client";
import { el, show } from "../dom";
import { formatTime, stateLabel, statusBadge } from "../format";
import { keepFresh } from "../live";
import { pipelineGraph } from "../pipelineGraph";
import { jobTable } from "./jobList";

const REFRESH_MS = 1_000;

export async function renderBatchPage(
  root: HTMLElement,
  client: ArtifactSandboxClient,
  batchId: string,
  signal: AbortSignal,
): Promise<void> {
  const header = el("div", { class: "page-head" });
  const status = el("div", { class: "live-status" });
  const graph = el("div", { class: "graph-wrap" });
  const table = el("div", { class: "table-wrap" });
  show(root, header, status, el("h2", {}, "Graph"), graph, el("h2", {}, "Jobs"), table);
  const draw = (batch: BatchView) => {
    show(header, ...heading(batch, client, () => void client.getBatch(batchId).then(draw)));
    show(graph, pipelineGraph(batch.jobs));
    show(table, jobTable(batch.jobs, { batchColumn: false }));
  };
  await keepFresh(
    async () => {
      const batch = await client.getBatch(batchId);
      draw(batch);
      return batch.status === "queued" || batch.status === "running" ? { again: true, waitMs: REFRESH_MS } : { again: false };
    },
    REFRESH_MS,
    signal,
    status,
  );
}

function heading(batch: BatchView, client: ArtifactSandboxClient, redraw: () => void): (HTMLElement | null)[] {
  const finished = batch.status === "succeeded" || batch.status === "failed";
  const counts = new Map<string, number>();
  for (const job of batch.jobs) counts.set(stateLabel(job), (counts.get(stateLabel(job)) ?? 0) + 1);
  const cancel = finished
    ? null
    : el(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: (event) => {
            if (event.currentTarget instanceof HTMLButtonElement) event.currentTarget.disabled = true;
            void client.cancelBatch(batch.batchId).then(redraw, redraw);
          },
        },
        "Cancel batch",
      );
  return [
    el("h1", {}, "Batch ", el("span", { class: "mono" }, batch.batchId), " ", statusBadge(batch.status)),
    el(
      "p",
      { class: "muted" },
      `Created ${formatTime(batch.createdAt)} · ${batch.jobs.length} jobs: `,
      [...counts].map(([state, count]) => `${count} ${state}`).join(", "),
    ),
    cancel,
  ];
}
