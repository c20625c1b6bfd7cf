/**
 * Riding out a restart of the service: a poll that fails because nothing answers, or because the
 * service answered 5xx, 429 or 503 while it comes back, is tried again with backoff, for a
 * bounded time. Any other error (404, 401, 400) is an answer, and is thrown at once.
 */
import { ApiError, ConnectionError } from "./errors";

export interface RetryPolicy {
  /** How long failures may go on, counted from the first of a run of them (default 120 s). */
  toleranceMs: number;
  /** First pause; it doubles up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { toleranceMs: 120_000, initialDelayMs: 250, maxDelayMs: 5_000 };

export function isTransient(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  return error instanceof ApiError && (error.status >= 500 || error.status === 429);
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** Counts a run of transient failures; `failed` waits before the next try, or rethrows once the run is too long. */
export class Backoff {
  private since: number | undefined;
  private delayMs: number;

  constructor(
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly signal?: AbortSignal,
  ) {
    this.delayMs = policy.initialDelayMs;
  }

  succeeded(): void {
    this.since = undefined;
    this.delayMs = this.policy.initialDelayMs;
  }

  async failed(error: unknown): Promise<void> {
    if (!isTransient(error)) throw error;
    this.since ??= Date.now();
    if (Date.now() - this.since >= this.policy.toleranceMs) throw error;
    await sleep(this.delayMs, this.signal);
    this.delayMs = Math.min(this.delayMs * 2, this.policy.maxDelayMs);
  }
}
