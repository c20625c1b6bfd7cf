/**
 * A running job's lease: short, and renewed by a heartbeat while the command runs, so that the
 * job of a coordinator that died mid-run is taken over within a lease (its alarm, re-armed at
 * every renewal, fires then) instead of after the job's whole timeout. A renewal also reads the
 * stored cancel, so a cancel reaches the command even if its direct signal was lost.
 */
import type { JobControl } from "./jobTypes";

/** How long a runner owns a job without renewing it. */
export const LEASE_MS = 30_000;
/** How often a runner renews its lease: three tries before it lapses. */
export const HEARTBEAT_MS = 10_000;

export class JobLease {
  private readonly timer: ReturnType<typeof setInterval>;
  private renewing: Promise<void> = Promise.resolve();
  private readonly cancel = new AbortController();
  private readonly loss = new AbortController();

  constructor(
    private readonly control: JobControl,
    private readonly attempt: number,
  ) {
    this.timer = setInterval(() => {
      this.renewing = this.renewing.then(() => this.renew());
    }, HEARTBEAT_MS);
  }

  /** Aborted when the stored state says the job was cancelled. */
  get cancelled(): AbortSignal {
    return this.cancel.signal;
  }

  /** Aborted when this attempt no longer holds the job: it must stop and not publish. */
  get lost(): AbortSignal {
    return this.loss.signal;
  }

  /** Stops the heartbeat; whether this attempt still holds the job. */
  async end(): Promise<boolean> {
    clearInterval(this.timer);
    await this.renewing;
    return !this.loss.signal.aborted;
  }

  private async renew(): Promise<void> {
    if (this.loss.signal.aborted) return;
    try {
      const { held, cancelRequested } = await this.control.renew(this.attempt, Date.now() + LEASE_MS);
      if (!held) this.loss.abort(new Error("another attempt holds the job"));
      else if (cancelRequested) this.cancel.abort(new Error("the job was cancelled"));
    } catch (error) {
      // The lease has room for two missed beats.
      console.warn(`attempt ${this.attempt}: lease renewal failed`, error);
    }
  }
}
