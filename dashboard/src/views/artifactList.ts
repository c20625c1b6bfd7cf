/**
 * A finished job's artifacts on its page: the first 200, which its record lists, then the rest a
 * page of `GET /v1/jobs/{id}/artifacts` (1,000 files) at a time on "Show more", so every file of a
 * 10,000-file job can be reached. Each is a signed download link that needs no key.
 */
import type { ArtifactSandboxClient, JobView } from "../../../client";
import { el, show } from "../dom";
import { formatBytes } from "../format";
import { errorNote } from "../live";

type Artifact = JobView["artifacts"][number];

export function artifactList(job: JobView, client: ArtifactSandboxClient): HTMLElement {
  const total = job.artifactIndex?.files ?? job.artifacts.length;
  if (total === 0) return el("p", { class: "empty" }, "No artifacts.");
  const rows = el("tbody");
  const count = el("span", { class: "muted artifact-count" });
  const problem = el("div");
  let shown = 0;
  // The listing's pages start from the first file again, so what the record listed is skipped there.
  let listed = 0;
  let cursor: string | undefined;
  const append = (artifacts: Artifact[]) => {
    rows.append(...artifacts.map(artifactRow));
    shown += artifacts.length;
    show(
      count,
      shown < total
        ? `Showing ${shown.toLocaleString("en")} of ${total.toLocaleString("en")} files`
        : `${total.toLocaleString("en")} files`,
    );
  };
  const more = el(
    "button",
    {
      type: "button",
      onclick: () => {
        more.disabled = true;
        show(problem);
        client.artifactPage(job.id, cursor).then(
          (page) => {
            append(page.artifacts.slice(Math.max(0, shown - listed)));
            listed += page.artifacts.length;
            cursor = page.nextCursor ?? undefined;
            more.disabled = false;
            more.hidden = page.nextCursor === null || shown >= total;
          },
          (error: unknown) => {
            show(problem, errorNote(error));
            more.disabled = false;
          },
        );
      },
    },
    "Show more",
  );
  append(job.artifacts);
  more.hidden = shown >= total;
  const table = el(
    "table",
    { class: "artifacts" },
    el("thead", {}, el("tr", {}, ...["Path", "Size", "Type", "SHA-256"].map((heading) => el("th", {}, heading)))),
    rows,
  );
  return el("div", {}, table, el("p", { class: "more-artifacts" }, count, more), problem);
}

function artifactRow(artifact: Artifact): HTMLTableRowElement {
  return el(
    "tr",
    {},
    el("td", {}, el("a", { href: artifact.url, download: "", class: "mono" }, artifact.path)),
    el("td", {}, formatBytes(artifact.size)),
    el("td", { class: "muted" }, artifact.contentType),
    el("td", { class: "mono muted", title: artifact.sha256 }, artifact.sha256.slice(0, 12)),
  );
}
