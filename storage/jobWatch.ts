/**
 * JobWatch: a Durable Object per sandbox that carries two signals between the API and the
 * consumer: "job finished" wakes long-polls, so a `?wait=N` request sleeps instead of
 * re-reading storage; "cancel job" reaches the consumer running it. It only signals: R2 stays
 * the source of truth, and a waiter re-reads the record after every wake-up or time slice, so a
 * lost signal (an evicted object) costs at most one slice of latency, never a wrong answer.
 */
import { DurableObject } from "cloudflare:workers";

/** Finished job IDs remembered for waiters that arrive just after the signal. */
const REMEMBERED_JOBS = 1000;

/** Job IDs that got a signal, remembered for waiters that arrive just after it. */
class Signal {
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

export class JobWatch extends DurableObject<Env> {
  private readonly finished = new Signal();
  private readonly cancelled = new Signal();

  /** Called by the consumer once a job's final record is written. */
  async jobFinished(jobId: string): Promise<void> {
    this.finished.raise(jobId);
    // Nobody needs to listen for a cancel of a finished job any more.
    this.cancelled.settle(jobId, false);
  }

  /** Resolves true once the job has finished, or false after `timeoutMs`. */
  async waitForJob(jobId: string, timeoutMs: number): Promise<boolean> {
    return this.finished.wait(jobId, timeoutMs);
  }

  /** Called by the API to cancel a running job. */
  async cancelJob(jobId: string): Promise<void> {
    this.cancelled.raise(jobId);
  }

  /** Held by the consumer while it runs a job: true if the job is cancelled, false once it finishes. */
  async waitForCancel(jobId: string, timeoutMs: number): Promise<boolean> {
    return this.cancelled.wait(jobId, timeoutMs);
  }
}

export function jobWatchFor(namespace: DurableObjectNamespace<JobWatch>, sandboxId: string): DurableObjectStub<JobWatch> {
  return namespace.get(namespace.idFromName(sandboxId));
}
