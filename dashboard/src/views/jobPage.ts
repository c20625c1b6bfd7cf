/**
 * A job's page: its status, exit code, tries and timings, kept current while it runs; its live log
 * (the API's Server-Sent Events, through the typed client, which sends the key and resumes with
 * Last-Event-ID); and its artifacts (views/artifactList.ts), each a signed download link that
 * needs no key.
 */
import type { ArtifactSandboxClient, JobView } from "../../../client";
import { isTerminal } from "../../../schemas/job";
import { el, show } from "../dom";
import { between, formatBytes, formatDuration, formatTime, jobBadge, jobTitle } from "../format";
import { errorNote, keepFresh } from "../live";
import { batchHref, listHref } from "../routes";
import { artifactList } from "./artifactList";

const REFRESH_MS = 1_500;

export async function renderJobPage(root: HTMLElement, client: ArtifactSandboxClient, jobId: string, signal: AbortSignal): Promise<void> {
  let job = await client.getJob(jobId);
  const header = el("div", { class: "page-head" });
  const summary = el("div");
  const details = el("div");
  const status = el("div", { class: "live-status" });
  const log = el("pre", { class: "log", "aria-label": "Log", tabindex: 0 });
  const logState = el("span", { class: "muted log-state" }, "connecting…");
  const logSection = el("section", { class: "log-section" }, el("h2", {}, "Log ", logState), log);
  show(root, header, status, summary, logSection, details);

  let artifactSection: HTMLElement | undefined;
  const draw = () => {
    show(header, ...heading(job, client, () => void refreshNow()));
    show(summary, ...jobSummary(job));
    // Built once the job has ended, when its artifacts no longer change, so that rows added with "Show more" stay.
    if (!artifactSection && isTerminal(job.status)) artifactSection = artifacts(job, client);
    show(details, ...jobDetails(job, artifactSection));
  };
  const refreshNow = async () => {
    job = await client.getJob(jobId);
    draw();
  };
  draw();
  const following = followLog(client, jobId, log, logState, signal);
  await keepFresh(
    async () => {
      await refreshNow();
      return isTerminal(job.status) ? { again: false } : { again: true, waitMs: REFRESH_MS };
    },
    REFRESH_MS,
    signal,
    status,
  );
  await following;
}

function heading(job: JobView, client: ArtifactSandboxClient, refresh: () => void): (HTMLElement | null)[] {
  const cancel = isTerminal(job.status)
    ? null
    : el(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: (event) => {
            if (event.currentTarget instanceof HTMLButtonElement) event.currentTarget.disabled = true;
            void client.cancel(job.id).then(refresh, refresh);
          },
        },
        job.cancelRequested ? "Cancelling…" : "Cancel job",
      );
  return [
    el("h1", {}, jobTitle(job), " ", jobBadge(job)),
    el(
      "p",
      { class: "muted" },
      el("span", { class: "mono" }, job.id),
      " · sandbox ",
      el("a", { href: listHref("jobs", { sandboxId: job.sandboxId }), class: "mono" }, job.sandboxId),
      job.batchId ? " · batch " : null,
      job.batchId ? el("a", { href: batchHref(job.batchId), class: "mono" }, job.batchId) : null,
    ),
    cancel,
  ];
}

/** Above the log: the facts a reader wants first, the error, and what ran. */
function jobSummary(job: JobView): HTMLElement[] {
  const facts: [string, Node | string][] = [
    ["Exit code", job.exitCode === null ? "–" : String(job.exitCode)],
    ["Signal", job.signal ?? "–"],
    ["Attempts", String(job.attempts)],
    ["Created", formatTime(job.createdAt)],
    ["Started", formatTime(job.startedAt)],
    ["Finished", formatTime(job.finishedAt)],
    ["Queued for", formatDuration(between(job.createdAt, job.startedAt))],
    ["Ran", formatDuration(job.durationMs)],
  ];
  const sections: HTMLElement[] = [
    el(
      "dl",
      { class: "facts" },
      ...facts.map(([name, value]) => el("div", {}, el("dt", {}, name), el("dd", { "data-fact": name }, value))),
    ),
  ];
  if (job.error) sections.push(el("p", { class: "error" }, el("strong", {}, job.error.code), ": ", job.error.message));
  if (job.waitingReason) sections.push(el("p", { class: "waiting" }, job.waitingReason));
  if (job.request.type === "run") {
    sections.push(
      el("h2", {}, "Command"),
      el("pre", { class: "command" }, job.request.command),
      el("p", { class: "muted" }, `in ${job.request.cwd}`),
    );
  } else {
    sections.push(el("h2", {}, "File operation"), el("p", { class: "mono" }, `${job.request.op} ${job.request.path}`));
  }
  return sections;
}

/** Below the log: every try, and the artifacts (once the job has ended). */
function jobDetails(job: JobView, artifactSection: HTMLElement | undefined): HTMLElement[] {
  const sections: HTMLElement[] = [];
  if (job.tries.length > 0) sections.push(el("h2", {}, "Tries"), triesTable(job));
  sections.push(el("h2", {}, "Artifacts"), artifactSection ?? el("p", { class: "muted" }, "Collected when the job finishes."));
  return sections;
}

function triesTable(job: JobView): HTMLTableElement {
  return el(
    "table",
    { class: "tries" },
    el("thead", {}, el("tr", {}, ...["Try", "Exit code", "Signal", "Duration", "Timed out"].map((heading) => el("th", {}, heading)))),
    el(
      "tbody",
      {},
      ...job.tries.map((attempt, index) =>
        el(
          "tr",
          {},
          el("td", {}, index + 1),
          el("td", { class: "mono" }, attempt.exitCode ?? "–"),
          el("td", {}, attempt.signal ?? "–"),
          el("td", {}, formatDuration(attempt.durationMs)),
          el("td", {}, attempt.timedOut ? "yes" : "no"),
        ),
      ),
    ),
  );
}

function artifacts(job: JobView, client: ArtifactSandboxClient): HTMLElement {
  const outputs = el(
    "p",
    { class: "downloads" },
    job.stdout ? el("a", { href: job.stdout.url, download: "" }, `stdout (${formatBytes(job.stdout.size)})`) : null,
    job.stderr ? el("a", { href: job.stderr.url, download: "" }, `stderr (${formatBytes(job.stderr.size)})`) : null,
    job.artifacts.length > 0 ? el("a", { href: job.archiveUrl, download: "" }, "all artifacts (.tar.gz)") : null,
  );
  const skipped = job.skippedArtifacts.map((skip) => el("li", {}, el("span", { class: "mono" }, skip.path), `: ${skip.reason}`));
  const urlsNote = job.urlsExpireAt
    ? el("p", { class: "muted" }, `Download links work without a key until ${formatTime(job.urlsExpireAt)}.`)
    : null;
  return el("div", {}, artifactList(job, client), skipped.length > 0 ? el("ul", { class: "muted" }, ...skipped) : null, outputs, urlsNote);
}

/** Appends the job's output to `log` as it arrives, stderr marked, following the end while the reader is there. */
async function followLog(
  client: ArtifactSandboxClient,
  jobId: string,
  log: HTMLElement,
  state: HTMLElement,
  signal: AbortSignal,
): Promise<void> {
  try {
    show(state, "streaming…");
    for await (const event of client.followLogs(jobId, { signal })) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      if (event.type === "stdout" || event.type === "stderr") log.append(el("span", { class: event.type }, event.text));
      else if (event.type === "gap")
        log.append(el("span", { class: "gap" }, `\n[${event.droppedBytes} bytes of ${event.stream} missed here]\n`));
      else if (event.type === "status")
        show(state, `ended: ${event.status}${event.exitCode === null ? "" : `, exit code ${event.exitCode}`}`);
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    if (log.childElementCount === 0) log.append(el("span", { class: "muted" }, "(no output)"));
  } catch (error) {
    if (!signal.aborted) show(state, errorNote(error));
  }
}
