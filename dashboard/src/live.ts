/** Keeping a page current: refresh it now, then every interval, until the page is left. */
import { el, show } from "./dom";

/**
 * Calls `refresh` now and then every `intervalMs` until `signal` aborts (the user left the page) or
 * `refresh` answers false (nothing left to change). A failed refresh shows its error in `status`
 * and is tried again: a restarting local stack comes back by itself.
 */
export async function keepFresh(
  refresh: () => Promise<boolean>,
  intervalMs: number,
  signal: AbortSignal,
  status: HTMLElement,
): Promise<void> {
  while (!signal.aborted) {
    let again = true;
    try {
      again = await refresh();
      show(status);
    } catch (error) {
      if (signal.aborted) return;
      show(status, errorNote(error));
    }
    if (!again) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function errorNote(error: unknown): HTMLElement {
  return el("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}
