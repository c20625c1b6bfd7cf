/** Keeping a page current: refresh it now, then again after the wait each refresh asks for, until the page is left. */
import { el, show } from "./dom";

/** What a refresh answers: whether there can be more to show, and how long to wait before the next. */
export type Refreshed = { again: false } | { again: true; waitMs: number };

/**
 * Calls `refresh` now and then again after the wait it asks for, until `signal` aborts (the user
 * left the page) or there is nothing left to change. A hidden tab makes no requests. A failed
 * refresh shows its error in `status` and is tried again after `retryMs`: a restarting local
 * stack comes back by itself.
 */
export async function keepFresh(
  refresh: () => Promise<Refreshed>,
  retryMs: number,
  signal: AbortSignal,
  status: HTMLElement,
): Promise<void> {
  while (!signal.aborted) {
    let waitMs = retryMs;
    if (!document.hidden) {
      try {
        const refreshed = await refresh();
        show(status);
        if (!refreshed.again) return;
        waitMs = refreshed.waitMs;
      } catch (error) {
        if (signal.aborted) return;
        show(status, errorNote(error));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

export function errorNote(error: unknown): HTMLElement {
  return el("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}
