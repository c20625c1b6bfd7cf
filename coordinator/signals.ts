/**
 * In-memory signals a coordinator raises for waiters ("job finished" wakes long-polls, "job
 * started" wakes followers of its logs). They only signal: the coordinator's job table stays the
 * source of truth, which a waiter reads before it waits and after every wake-up.
 */

/** Finished job IDs remembered for waiters that arrive just after the signal. */
const REMEMBERED_JOBS = 1000;

/** What a wait ends with: whether the signal was raised, and the value it carried to the waiters of that moment. */
export type WaitResult<T> = { raised: false } | { raised: true; value?: T };

/** Job IDs that got a signal, remembered for waiters that arrive just after it. */
export class Signal<T> {
  private readonly raised = new Set<string>();
  private readonly waiters = new Map<string, Set<(result: WaitResult<T>) => void>>();

  raise(jobId: string, value?: T): void {
    this.raised.add(jobId);
    if (this.raised.size > REMEMBERED_JOBS) {
      const oldest = this.raised.values().next().value;
      if (oldest !== undefined) this.raised.delete(oldest);
    }
    this.settle(jobId, value === undefined ? { raised: true } : { raised: true, value });
  }

  /** Whether the job's signal was raised recently (within the last REMEMBERED_JOBS). */
  wasRaised(jobId: string): boolean {
    return this.raised.has(jobId);
  }

  /** Ends every wait for the job with `result` (without the signal: its waiters stop listening). */
  settle(jobId: string, result: WaitResult<T>): void {
    for (const wake of this.waiters.get(jobId) ?? []) wake(result);
    this.waiters.delete(jobId);
  }

  /** Resolves once any of the jobs' signals is raised, or after `timeoutMs`; true if one was. */
  waitAny(jobIds: string[], timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = (result: WaitResult<T>) => {
        clearTimeout(timer);
        for (const jobId of jobIds) this.forget(jobId, wake);
        resolve(result.raised);
      };
      const timer = setTimeout(() => wake({ raised: false }), timeoutMs);
      for (const jobId of jobIds) {
        const waiting = this.waiters.get(jobId) ?? new Set<(result: WaitResult<T>) => void>();
        waiting.add(wake);
        this.waiters.set(jobId, waiting);
      }
    });
  }

  private forget(jobId: string, wake: (result: WaitResult<T>) => void): void {
    const waiting = this.waiters.get(jobId);
    waiting?.delete(wake);
    if (waiting?.size === 0) this.waiters.delete(jobId);
  }

  /** Resolves raised once the signal is raised, not raised after `timeoutMs` or when settled without it. */
  wait(jobId: string, timeoutMs: number): Promise<WaitResult<T>> {
    if (this.raised.has(jobId)) return Promise.resolve({ raised: true });
    return new Promise((resolve) => {
      const waiting = this.waiters.get(jobId) ?? new Set<(result: WaitResult<T>) => void>();
      const wake = (result: WaitResult<T>) => {
        clearTimeout(timer);
        resolve(result);
      };
      const timer = setTimeout(() => {
        waiting.delete(wake);
        if (waiting.size === 0) this.waiters.delete(jobId);
        resolve({ raised: false });
      }, timeoutMs);
      waiting.add(wake);
      this.waiters.set(jobId, waiting);
    });
  }
}
