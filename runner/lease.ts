/**
 * A running job's lease: short, and renewed by a heartbeat while the command runs, so that the
 * job of a runner that crashed is taken over within a lease instead of after its whole timeout.
 * Each renewal is a compare-and-swap on the R2 record; a renewal that finds the record changed
 * re-reads it, which is how a cancel stored by the API reaches a running job even when the
 * signal sent to the coordinator was lost.
 */
import type { JobStore, VersionedRecord } from "../storage/jobStore";

/** How long a runner owns a job without renewing it. */
export const LEASE_MS = 30_000;
/** How often a runner renews its lease: three tries before it lapses. */
export const HEARTBEAT_MS = 10_000;

export class JobLease {
  private version: VersionedRecord;
  private readonly timer: ReturnType<typeof setInterval>;
  private renewing: Promise<void> = Promise.resolve();
  private readonly cancel = new AbortController();
  private readonly loss = new AbortController();

  constructor(
    private readonly store: JobStore,
    claimed: VersionedRecord,
    private readonly onRenewed: (leaseUntil: number) => Promise<void>,
  ) {
    this.version = claimed;
    this.timer = setInterval(() => {
      this.renewing = this.renewing.then(() => this.renew());
    }, HEARTBEAT_MS);
  }

  /** Aborted when the stored record says the job was cancelled. */
  get cancelled(): AbortSignal {
    return this.cancel.signal;
  }

  /** Aborted when another runner has taken the job: this attempt must stop and not publish. */
  get lost(): AbortSignal {
    return this.loss.signal;
  }

  /**
   * Stops the heartbeat; the last version of the record this runner saw, or undefined if the job
   * was taken over. A cancel stored since the last renewal makes the final compare-and-swap fail,
   * and the retry that follows ends the job as cancelled.
   */
  async end(): Promise<VersionedRecord | undefined> {
    clearInterval(this.timer);
    await this.renewing;
    return this.loss.signal.aborted ? undefined : this.version;
  }

  private async renew(): Promise<void> {
    if (this.loss.signal.aborted) return;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const leaseUntil = Date.now() + LEASE_MS;
        const renewed = await this.store.replace(this.version, { ...this.version.record, leaseUntil: new Date(leaseUntil).toISOString() });
        if (renewed) {
          this.version = renewed;
          await this.onRenewed(leaseUntil);
          return;
        }
        const latest = await this.store.getVersioned(this.version.record.id);
        if (!latest || !this.stillOurs(latest)) {
          this.loss.abort(new Error("another runner took the job over"));
          return;
        }
        this.version = latest;
        if (latest.record.cancelRequested) this.cancel.abort(new Error("the job was cancelled"));
      }
    } catch (error) {
      // A storage blip: the next beat tries again, and the lease has room for two misses.
      console.warn(`job ${this.version.record.id}: lease renewal failed`, error);
    }
  }

  private stillOurs(latest: VersionedRecord): boolean {
    return latest.record.status === "running" && latest.record.attempts === this.version.record.attempts;
  }
}
