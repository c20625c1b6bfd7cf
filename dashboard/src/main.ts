/**
 * The dashboard's entry: finds out whether the API wants a key, then shows the page the URL's hash
 * names, and a new one whenever the hash changes. Leaving a page aborts its live updates.
 */
import type { ArtifactSandboxClient } from "../../client";
import { el, show } from "./dom";
import { errorNote } from "./live";
import { parseRoute, type Route } from "./routes";
import { type Access, checkAccess, forgetKey, isUnauthenticated } from "./session";
import { renderBatchList } from "./views/batchList";
import { renderBatchPage } from "./views/batchPage";
import { renderJobList } from "./views/jobList";
import { renderJobPage } from "./views/jobPage";
import { renderKeyPrompt } from "./views/keyPrompt";
import { renderSandboxes } from "./views/sandboxes";

const view = requireElement("view");
const session = requireElement("session");
const nav = requireElement("nav");
let leavePage = new AbortController();
/** Which item of the navigation a page belongs to. */
const NAV_SECTION: Record<Route["view"], string> = {
  jobs: "jobs",
  job: "jobs",
  batches: "batches",
  batch: "batches",
  sandboxes: "sandboxes",
};
let client: ArtifactSandboxClient | undefined;

function requireElement(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (!element) throw new Error(`index.html has no #${id}`);
  return element;
}

function renderRoute(route: Route, api: ArtifactSandboxClient, signal: AbortSignal): Promise<void> {
  switch (route.view) {
    case "jobs":
      return renderJobList(view, api, route.filters, signal);
    case "batches":
      return renderBatchList(view, api, route.filters, signal);
    case "job":
      return renderJobPage(view, api, route.jobId, signal);
    case "batch":
      return renderBatchPage(view, api, route.batchId, signal);
    case "sandboxes":
      return renderSandboxes(view, api, signal);
  }
}

function navigate(): void {
  leavePage.abort();
  leavePage = new AbortController();
  const signal = leavePage.signal;
  const route = parseRoute(location.hash);
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-nav]")) {
    link.classList.toggle("current", link.dataset.nav === NAV_SECTION[route.view]);
  }
  if (!client) return;
  show(view, el("p", { class: "muted" }, "Loading…"));
  renderRoute(route, client, signal).catch((error: unknown) => {
    if (signal.aborted) return;
    if (isUnauthenticated(error)) {
      forgetKey();
      void start();
      return;
    }
    show(view, errorNote(error));
  });
}

function signedIn(access: Access & { kind: "ok" }): void {
  client = access.client;
  nav.hidden = false;
  const signOut = el(
    "button",
    {
      type: "button",
      class: "link",
      onclick: () => {
        forgetKey();
        client = undefined;
        void start();
      },
    },
    "Sign out",
  );
  show(session, access.anonymous ? el("span", { class: "muted" }, "local stack · no API key") : el("span", {}, "API key set · ", signOut));
  navigate();
}

async function start(): Promise<void> {
  // Until the API lets the page in, there is nowhere to go.
  nav.hidden = true;
  show(session);
  try {
    const access = await checkAccess();
    if (access.kind === "ok") signedIn(access);
    else renderKeyPrompt(view, access.rejected, signedIn);
  } catch (error) {
    show(view, errorNote(error));
  }
}

window.addEventListener("hashchange", navigate);
void start();
