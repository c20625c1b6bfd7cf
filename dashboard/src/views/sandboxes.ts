/** The sandboxes page: each live sandbox with its activity, a link to its jobs, and delete. */
import type { ArtifactSandboxClient, SandboxView } from "../../../client";
import { el, show } from "../dom";
import { formatBytes, formatTime } from "../format";
import { errorNote } from "../live";
import { listHref } from "../routes";

export async function renderSandboxes(root: HTMLElement, client: ArtifactSandboxClient, signal: AbortSignal): Promise<void> {
  const notice = el("div", { class: "live-status", role: "status" });
  const table = el("div", { class: "table-wrap" });
  show(
    root,
    el("h1", {}, "Sandboxes"),
    el(
      "p",
      { class: "muted" },
      "Deleting a sandbox cancels its unfinished jobs and destroys its container and workspace; its job records stay until their retention ends.",
    ),
    notice,
    table,
  );
  const reload = async () => {
    if (signal.aborted) return;
    const sandboxes = await client.listSandboxes();
    show(
      table,
      sandboxes.length === 0
        ? el("p", { class: "empty" }, "No sandboxes yet: submit a job to create one.")
        : sandboxTable(sandboxes, remove),
    );
  };
  const remove = async (sandboxId: string) => {
    if (!confirm(`Delete sandbox ${sandboxId}? Its unfinished jobs are cancelled and its workspace is destroyed.`)) return;
    try {
      const result = await client.deleteSandbox(sandboxId);
      const cancelled = result.cancelledJobs === 1 ? "1 job cancelled" : `${result.cancelledJobs} jobs cancelled`;
      show(notice, el("p", { class: "ok" }, `Deleted ${sandboxId} (${cancelled}).`));
      await reload();
    } catch (error) {
      show(notice, errorNote(error));
    }
  };
  await reload();
}

function sandboxTable(sandboxes: SandboxView[], remove: (sandboxId: string) => Promise<void>): HTMLTableElement {
  return el(
    "table",
    { class: "sandboxes" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...["Sandbox", "Created", "Last submit", "Expires if idle", "Saved workspace", ""].map((heading) => el("th", {}, heading)),
      ),
    ),
    el(
      "tbody",
      {},
      ...sandboxes.map((sandbox) =>
        el(
          "tr",
          { "data-sandbox-id": sandbox.sandboxId },
          el("td", {}, el("a", { href: listHref("jobs", { sandboxId: sandbox.sandboxId }), class: "mono" }, sandbox.sandboxId)),
          el("td", {}, formatTime(sandbox.createdAt)),
          el("td", {}, formatTime(sandbox.lastActiveAt)),
          el("td", {}, formatTime(sandbox.expiresAt)),
          el("td", {}, formatBytes(sandbox.savedWorkspaceBytes)),
          el(
            "td",
            { class: "actions" },
            el(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Delete ${sandbox.sandboxId}`,
                onclick: (event) => {
                  const button = event.currentTarget;
                  if (button instanceof HTMLButtonElement) button.disabled = true;
                  void remove(sandbox.sandboxId).finally(() => {
                    if (button instanceof HTMLButtonElement) button.disabled = false;
                  });
                },
              },
              "Delete",
            ),
          ),
        ),
      ),
    ),
  );
}
