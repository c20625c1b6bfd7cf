/** The filters of the job and batch lists (status, sandbox, time); a change is a new URL. */
import type { SandboxView } from "../../../client";
import { JobStatus } from "../../../schemas/job";
import { el } from "../dom";
import { isSince, type ListFilters, listHref, SINCE_VALUES, type Since } from "../routes";

const SINCE_LABELS: Record<Since, string> = {
  "15m": "last 15 minutes",
  "1h": "last hour",
  "24h": "last 24 hours",
  "7d": "last 7 days",
  all: "any time",
};

export function filterBar(view: "jobs" | "batches", filters: ListFilters, sandboxes: SandboxView[]): HTMLFormElement {
  const status = select(
    "status",
    "Status",
    [["", "any status"], ...JobStatus.options.map((value): [string, string] => [value, value.replace("_", " ")])],
    filters.status ?? "",
  );
  const sandboxIds = new Set(sandboxes.map((sandbox) => sandbox.sandboxId));
  if (filters.sandboxId) sandboxIds.add(filters.sandboxId);
  const sandbox = select(
    "sandbox",
    "Sandbox",
    [["", "all sandboxes"], ...[...sandboxIds].sort().map((id): [string, string] => [id, id])],
    filters.sandboxId ?? "",
  );
  const since = select(
    "since",
    "Created",
    SINCE_VALUES.map((value): [string, string] => [value, SINCE_LABELS[value]]),
    filters.since,
  );
  const form = el("form", { class: "filters", "aria-label": "Filters" }, status, sandbox, since);
  form.addEventListener("change", () => {
    const chosen = new FormData(form);
    const parsedStatus = JobStatus.safeParse(chosen.get("status"));
    const chosenSince = chosen.get("since");
    location.hash = listHref(view, {
      status: parsedStatus.success ? parsedStatus.data : undefined,
      sandboxId: String(chosen.get("sandbox") ?? "") || undefined,
      since: isSince(chosenSince) ? chosenSince : undefined,
    });
  });
  return form;
}

function select(name: string, caption: string, options: [string, string][], selected: string): HTMLLabelElement {
  const element = el("select", { name }, ...options.map(([value, text]) => el("option", { value, selected: value === selected }, text)));
  return el("label", {}, el("span", {}, caption), element);
}
