/**
 * In-memory signals a coordinator raises for waiters ("job finished" wakes long-polls). They
 * only signal: R2 stays the source of truth, and a waiter re-reads the record after every
 * wake-up or time slice, so a lost signal (an evicted object) costs one slice, never a wrong answer.
 */

/** Finished job IDs remembered for waiters that arrive just after the signal. */
const REMEMBERED_JOBS = 1000;

/** Job IDs that got a signal, remembered for waiters that arrive just after it. */
export class Signal {
  private readonly raised = new Set<string>();
  private readonly waiters = new Map<string, Set<(raised: boolean) => void>>();

  raise(jobId: string): void {
    this.raised.add(jobId);
    if (this.raised.size > REMEMBERED_JOBS) {
      const oldest = this.raised.values().next().value;
      if (oldest !== undefined) this.raised.delete(oldest);
    }
    this.settle(jobId, true);
  }

  /** Whether the job's signal was raised recently (within the last REMEMBERED_JOBS). */
  wasRaised(jobId: string): boolean {
    return this.raised.has(jobId);
  }

  /** Ends every wait for the job without the signal (its waiters stop listening). */
  settle(jobId: string, raised: boolean): void {
    for (const wake of this.waiters.get(jobId) ?? []) wake(raised);
    this.waiters.delete(jobId);
  }

  /** Resolves true once the signal is raised, false after `timeoutMs` or when settled without it. */
  wait(jobId: string, timeoutMs: number): Promise<boolean> {
    if (this.raised.has(jobId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiting = this.waiters.get(jobId) ?? new Set<(raised: boolean) => void>();
      const wake = (raised: boolean) => {
        clearTimeout(timer);
        resolve(raised);
      };
      const timer = setTimeout(() => {
        waiting.delete(wake);
        if (waiting.size === 0) this.waiters.delete(jobId);
        resolve(false);
      }, timeoutMs);
      waiting.add(wake);
      this.waiters.set(jobId, waiting);
    });
  }
}
