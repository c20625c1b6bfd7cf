/**
 * A batch's jobs as a graph of `needs`, drawn as SVG: each job in the column after the last job
 * it needs (jobs needing nothing first), an arrow from a need to what needs it, each node coloured
 * by its status and linking to the job's page. An arrow that skips columns runs in the gap between
 * rows, so it never passes under a node it does not belong to.
 */
import type { JobView } from "../../client";
import { svg } from "./dom";
import { formatDuration, isCancelled, stateLabel } from "./format";
import { jobHref } from "./routes";

const NODE_WIDTH = 210;
const NODE_HEIGHT = 58;
const COLUMN_GAP = 72;
const ROW_GAP = 28;
/** Room above the first row for edges routed between rows. */
const PADDING = ROW_GAP / 2 + 4;

/** Each job's column: one past the furthest of its needs. `needs` are job IDs of the same batch. */
export function columnsOf(jobs: JobView[]): Map<string, number> {
  const byId = new Map(jobs.map((job) => [job.id, job]));
  const columns = new Map<string, number>();
  const visiting = new Set<string>();
  const columnOf = (job: JobView): number => {
    const known = columns.get(job.id);
    if (known !== undefined) return known;
    // The API refuses cycles; should one appear anyway, it must not hang the page.
    if (visiting.has(job.id)) return 0;
    visiting.add(job.id);
    const needed = job.needs.map((id) => byId.get(id)).filter((need): need is JobView => need !== undefined);
    const column = needed.length === 0 ? 0 : Math.max(...needed.map(columnOf)) + 1;
    visiting.delete(job.id);
    columns.set(job.id, column);
    return column;
  };
  for (const job of jobs) columnOf(job);
  return columns;
}

export function pipelineGraph(jobs: JobView[]): SVGSVGElement {
  const columns = columnsOf(jobs);
  const rows = new Map<string, number>();
  const perColumn = new Map<number, number>();
  for (const job of jobs) {
    const column = columns.get(job.id) ?? 0;
    const row = perColumn.get(column) ?? 0;
    rows.set(job.id, row);
    perColumn.set(column, row + 1);
  }
  const columnCount = Math.max(1, ...[...columns.values()].map((column) => column + 1));
  const rowCount = Math.max(1, ...perColumn.values());
  const width = columnCount * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP + 2 * PADDING;
  const height = rowCount * (NODE_HEIGHT + ROW_GAP) - ROW_GAP + 2 * PADDING;
  const position = (job: JobView) => ({
    x: PADDING + (columns.get(job.id) ?? 0) * (NODE_WIDTH + COLUMN_GAP),
    y: PADDING + (rows.get(job.id) ?? 0) * (NODE_HEIGHT + ROW_GAP),
  });
  const byId = new Map(jobs.map((job) => [job.id, job]));

  const edges = jobs.flatMap((job) =>
    job.needs.flatMap((needId) => {
      const need = byId.get(needId);
      if (!need) return [];
      const from = position(need);
      const to = position(job);
      const [x1, y1, x2, y2] = [from.x + NODE_WIDTH, from.y + NODE_HEIGHT / 2, to.x, to.y + NODE_HEIGHT / 2];
      return [svg("path", { class: `edge status-${need.status}`, d: edgePath(x1, y1, x2, y2, rowCount), "marker-end": "url(#arrow)" })];
    }),
  );
  const nodes = jobs.map((job) => {
    const { x, y } = position(job);
    const cancelled = isCancelled(job);
    const state = stateLabel(job);
    const timing = job.durationMs === null ? "" : ` · ${formatDuration(job.durationMs)}`;
    const link = svg(
      "a",
      {
        href: jobHref(job.id),
        class: `node status-${cancelled ? "cancelled" : job.status}`,
        "data-job-name": job.name ?? job.id,
        "data-status": job.status,
      },
      svg("title", {}, `${job.name ?? job.id}: ${state}`),
      svg("rect", { x, y, width: NODE_WIDTH, height: NODE_HEIGHT, rx: 8 }),
      svg("circle", { class: "dot", cx: x + 16, cy: y + 20, r: 5 }),
      svg("text", { class: "name", x: x + 28, y: y + 24 }, clip(job.name ?? job.id, 22)),
      svg("text", { class: "meta", x: x + 14, y: y + 44 }, clip(`${job.sandboxId} · ${state}${timing}`, 30)),
    );
    return link;
  });
  return svg(
    "svg",
    { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Pipeline graph" },
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L8,4 L0,8 z" }),
      ),
    ),
    ...edges,
    ...nodes,
  );
}

/** From a node's right edge to another's left: an S-curve to the next column, or through the nearest gap between rows. */
function edgePath(x1: number, y1: number, x2: number, y2: number, rowCount: number): string {
  if (x2 - x1 <= COLUMN_GAP) {
    const bend = (x2 - x1) / 2;
    return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
  }
  const gaps = Array.from({ length: rowCount + 1 }, (_, row) => PADDING - ROW_GAP / 2 + row * (NODE_HEIGHT + ROW_GAP));
  const middle = (y1 + y2) / 2;
  const channel = gaps.reduce((best, gap) => (Math.abs(gap - middle) < Math.abs(best - middle) ? gap : best));
  const [out, into, bend] = [x1 + COLUMN_GAP / 2, x2 - COLUMN_GAP / 2, COLUMN_GAP / 4];
  return `M${x1},${y1} C${x1 + bend},${y1} ${out - bend},${channel} ${out},${channel} L${into},${channel} C${into + bend},${channel} ${x2 - bend},${y2} ${x2},${y2}`;
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
