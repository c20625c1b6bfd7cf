/**
 * JobWatch: a Durable Object per sandbox that wakes long-polls when a job finishes, so a
 * `?wait=N` request sleeps instead of re-reading storage. It only signals: R2 stays the source
 * of truth, and a waiter re-reads the record after every wake-up or time slice, so a lost
 * signal (an evicted object) costs at most one slice of latency, never a wrong answer.
 */
import { DurableObject } from "cloudflare:workers";

/** Finished job IDs remembered for waiters that arrive just after the signal. */
const REMEMBERED_JOBS = 1000;

export class JobWatch extends DurableObject<Env> {
  private readonly finished = new Set<string>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Called by the consumer once a job's final record is written. */
  async jobFinished(jobId: string): Promise<void> {
    this.finished.add(jobId);
    if (this.finished.size > REMEMBERED_JOBS) {
      const oldest = this.finished.values().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    for (const wake of this.waiters.get(jobId) ?? []) wake();
    this.waiters.delete(jobId);
  }

  /** Resolves true once the job has finished, or false after `timeoutMs`. */
  async waitForJob(jobId: string, timeoutMs: number): Promise<boolean> {
    if (this.finished.has(jobId)) return true;
    return new Promise((resolve) => {
      const waiting = this.waiters.get(jobId) ?? new Set<() => void>();
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
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

export function jobWatchFor(namespace: DurableObjectNamespace<JobWatch>, sandboxId: string): DurableObjectStub<JobWatch> {
  return namespace.get(namespace.idFromName(sandboxId));
}
