/**
 * SandboxCoordinator: one Durable Object per sandbox that owns the order and the exclusivity of
 * its jobs. Jobs arrive from the API at submit (so it knows submission order before any queue
 * message) and again from the queue consumer (the durable intake; a duplicate changes nothing).
 * Its alarm runs them one at a time, oldest first, so a long job in one sandbox never holds up
 * another sandbox, and nothing holds a queue batch open while commands run.
 *
 * A runner that dies (a crash, a restart) leaves its job `running` with a lapsing lease; the
 * alarm, re-armed at every lease renewal, or the sweeper (scheduled handler) takes it over.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { QueuedJob, RunOutcome } from "../runner/jobTypes";
import { KvCacheScheduler } from "../runner/kvCache";
import { LEASE_MS } from "../runner/lease";
import { runJob } from "../runner/runJob";
import { sandboxFactory } from "../sandbox/select";
import { commandBudgetMs, type JobRecord } from "../schemas/job";
import { jobStores } from "../storage/jobStore";
import { tenantOf } from "../storage/layout";
import { wakeDependents } from "./dependents";
import { JobQueue } from "./jobQueue";
import { LiveLog, type Offsets, type OutputStream } from "./liveLog";
import { Signal, type WaitResult } from "./signals";

/** Cloudflare gives an alarm invocation 15 minutes of wall clock; jobs start only if they fit. */
const ALARM_BUDGET_MS = 15 * 60 * 1000;
/** Kept free in an alarm invocation beyond a job's timeout: claiming, uploads, the final record. */
const JOB_OVERHEAD_MS = 60 * 1000;
/**
 * An invocation may make 1,000 subrequests. A job makes about 30 (storage, SDK calls, lease
 * renewals), plus about 3 per artifact (up to 200): after this many jobs, or after one that
 * collected artifacts, the coordinator carries on in a fresh invocation.
 */
const JOBS_PER_INVOCATION = 8;
/** How often a job waiting for the jobs it needs looks again, should their wake-up be lost. */
const NEEDS_RECHECK_MS = 30 * 1000;
/** A job that ran this long renewed its lease often enough to count as heavy, too. */
const HEAVY_JOB_MS = 60 * 1000;

export class SandboxCoordinator extends DurableObject<Env> {
  private readonly queue: JobQueue;
  /** Raised when a job finishes; a run's signal carries the final record as written to R2. */
  private readonly finished = new Signal<JobRecord>();
  /** The job this object is running now, how to cancel it, and its output so far. */
  private running: { jobId: string; cancel: AbortController; log: LiveLog; claimed: boolean } | undefined;
  /** Raised when a job starts running here: wakes followers of its logs that came early. */
  private readonly started = new Signal<true>();
  private draining: Promise<void> | undefined;
  private drainStartedAt = 0;
  /** Jobs arrived while draining: look again before letting the alarm go. */
  private arrivedWhileDraining = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.queue = new JobQueue(ctx.storage.sql);
  }

  /** Takes jobs in (from the API at submit, and from the queue consumer) and starts them. */
  async enqueue(jobs: QueuedJob[]): Promise<void> {
    // A delivery of a job held already, or finished lately, changes nothing (and costs no alarm).
    const added = this.queue.add(jobs.filter((job) => !this.finished.wasRaised(job.jobId)));
    if (added > 0) await this.wake();
  }

  /** The sweeper's call: makes sure held work is running; returns how many jobs are held. */
  async kick(): Promise<number> {
    await this.wake();
    return this.queue.size();
  }

  /** Whether this coordinator holds the job (a dead-lettered job it holds still runs). */
  async holds(jobId: string): Promise<boolean> {
    return this.queue.has(jobId);
  }

  /** Of these jobs, those this coordinator does not hold: the sweeper's candidates to hand over again. */
  async notHeld(jobIds: string[]): Promise<string[]> {
    return jobIds.filter((jobId) => !this.queue.has(jobId));
  }

  /** A job that some of this sandbox's jobs need has finished: they check their needs again now. */
  async needsSettled(): Promise<void> {
    if (this.queue.releaseWaiting() > 0) await this.wake();
  }

  /** Called by the API after it stored a cancel on a running job's record: ends it now. */
  async cancelJob(jobId: string): Promise<void> {
    if (this.running?.jobId === jobId) this.running.cancel.abort(new Error("cancelled"));
  }

  /**
   * The running job's output from `from` on, as Server-Sent Events, live until its command ends
   * or `maxMs` passes; a job about to start is waited for up to `maxMs`. Null when this object is
   * not running the job (it has finished, or has not started in that time).
   */
  async followLogs(jobId: string, from: Offsets, maxMs: number): Promise<ReadableStream<Uint8Array> | null> {
    const runningIt = () => (this.running?.jobId === jobId && this.running.claimed ? this.running : undefined);
    if (!runningIt()) await this.started.wait(jobId, maxMs);
    return runningIt()?.log.follow(from, maxMs) ?? null;
  }

  /** What the running job has written to one stream so far; null when this object is not running it. */
  async outputSoFar(jobId: string, stream: OutputStream): Promise<Uint8Array | null> {
    return this.running?.jobId === jobId ? this.running.log.snapshot(stream) : null;
  }

  /**
   * Resolves once the job has finished, or after `timeoutMs` (not raised). A waiter woken by its
   * runner gets the final record the runner wrote to R2 (a finished record never changes), so
   * it need not read R2 again; one that came later, or was woken by a cancel, reads it.
   */
  async waitForJob(jobId: string, timeoutMs: number): Promise<WaitResult<JobRecord>> {
    return this.finished.wait(jobId, timeoutMs);
  }

  /**
   * Called by whoever finishes a job outside a run (the API's cancel of a queued job): wakes its
   * waiters and lets the jobs behind it go, even if it was waiting out a retry's backoff.
   */
  async jobFinished(jobId: string): Promise<void> {
    this.finished.raise(jobId);
    if (!this.queue.has(jobId) || this.running?.jobId === jobId) return;
    this.queue.remove(jobId);
    await this.wake();
  }

  override async alarm(): Promise<void> {
    await this.drain();
  }

  /**
   * Sets the alarm that runs held jobs: now, unless this object is already running them, or the
   * first in line waits out a retry's backoff. A job left `running` by a runner that died (a
   * crash, a restart) is taken over at once: this object is not draining, so that runner is gone.
   */
  private async wake(): Promise<void> {
    const notBefore = this.queue.firstNotBefore();
    if (notBefore === undefined) return;
    if (this.drainIsAlive()) this.arrivedWhileDraining = true;
    else await this.ctx.storage.setAlarm(Math.max(Date.now(), notBefore));
  }

  /** A drain older than an alarm invocation may live was cut off without this object being reset. */
  private drainIsAlive(): boolean {
    return this.draining !== undefined && Date.now() - this.drainStartedAt < ALARM_BUDGET_MS;
  }

  private drain(): Promise<void> {
    if (!this.drainIsAlive()) {
      this.drainStartedAt = Date.now();
      this.draining = undefined;
    }
    this.draining ??= this.runHeldJobs().finally(async () => {
      this.draining = undefined;
      if (this.arrivedWhileDraining) {
        this.arrivedWhileDraining = false;
        await this.wake();
      }
    });
    return this.draining;
  }

  private async runHeldJobs(): Promise<void> {
    const startedAt = Date.now();
    const config = readConfig(this.env);
    const stores = jobStores(this.env.JOB_STATUS, this.env.JOB_OUTPUT, config.retentionSeconds);
    const kvCache = KvCacheScheduler.overQueue(stores, this.env.JOB_QUEUE);
    const sandboxFor = sandboxFactory(this.env);
    let jobsRun = 0;
    let watchdogAt = 0;
    // After a job that collected artifacts or renewed its lease for a while, this invocation has
    // used much of its subrequests: the next job gets a fresh one.
    let heavyJobRun = false;
    try {
      for (let job = this.queue.next(); job; job = this.queue.next()) {
        if (job.notBefore > Date.now()) {
          await this.ctx.storage.setAlarm(job.notBefore);
          return;
        }
        const budgetMs = job.request?.type === "run" ? commandBudgetMs(job.request) : 60_000;
        // The first job of an invocation always fits (the longest allowed tries plus the overhead
        // is the budget); a later one only if what is left of the budget allows.
        const outOfTime = jobsRun > 0 && Date.now() - startedAt + budgetMs + JOB_OVERHEAD_MS > ALARM_BUDGET_MS;
        if (outOfTime || jobsRun >= JOBS_PER_INVOCATION || heavyJobRun) {
          // Not enough of this invocation left (time or subrequests): carry on in a fresh one.
          await this.ctx.storage.setAlarm(Date.now());
          return;
        }
        jobsRun++;
        const jobStartedAt = Date.now();
        const cancel = new AbortController();
        const log = new LiveLog();
        const running = { jobId: job.jobId, cancel, log, claimed: false };
        this.running = running;
        // Should this object die mid-job, the alarm fires again once the lease has lapsed. One
        // watchdog covers a run of quick jobs; lease renewals keep it ahead of a long one.
        if (watchdogAt - Date.now() < LEASE_MS / 2) {
          watchdogAt = Date.now() + LEASE_MS;
          await this.ctx.storage.setAlarm(watchdogAt);
        }
        const outcome: RunOutcome = await runJob(job, {
          store: stores(tenantOf(job.sandboxKey)),
          bucket: this.env.JOB_OUTPUT,
          sandbox: sandboxFor(job.sandboxKey),
          artifactLimits: { maxFiles: config.artifactMaxFiles, maxTotalBytes: config.artifactMaxTotalBytes },
          maxAttempts: config.maxJobAttempts,
          kvCache,
          announceFinished: async (record) => {
            this.finished.raise(record.id, record);
            await wakeDependents(this.env, record);
          },
          cancelSignal: cancel.signal,
          onLeaseRenewed: async (leaseUntil) => {
            watchdogAt = leaseUntil;
            await this.ctx.storage.setAlarm(leaseUntil);
          },
          onClaimed: () => {
            running.claimed = true;
            this.started.raise(job.jobId);
          },
          onOutput: (stream, text) => log.append(stream, text),
        }).catch((error: unknown): RunOutcome => {
          console.error(`job ${job.jobId}: storage error, will retry`, error);
          return { kind: "retry", delayMs: 5000, reason: "storage error" };
        });
        log.close();
        this.running = undefined;
        // A request stored in R2 is a large file write, which collects nothing.
        heavyJobRun = (job.request?.type === "run" && job.request.artifacts.length > 0) || Date.now() - jobStartedAt > HEAVY_JOB_MS;
        if (outcome.kind === "wait" && this.finished.wasRaised(job.jobId)) {
          // Cancelled while its needs were checked: it is finished, and its line goes on now.
          this.queue.remove(job.jobId);
          continue;
        }
        if (outcome.kind === "wait") {
          // First in line and held: this sandbox's later jobs wait too, keeping the order. A
          // finishing job it needs wakes it (needsSettled); the recheck covers a lost wake-up.
          this.queue.waitForNeeds(job.jobId, Date.now() + NEEDS_RECHECK_MS);
          await this.ctx.storage.setAlarm(Date.now() + NEEDS_RECHECK_MS);
          return;
        }
        if (outcome.kind === "retry") {
          // The job stays first in line: later jobs of this sandbox wait for it, keeping the order.
          this.queue.deferUntil(job.jobId, Date.now() + outcome.delayMs);
          await this.ctx.storage.setAlarm(Date.now() + outcome.delayMs);
          return;
        }
        this.queue.remove(job.jobId);
      }
      await this.ctx.storage.deleteAlarm();
    } finally {
      this.running = undefined;
      // Only the KV cache depends on this; R2 already holds every record.
      await kvCache.flush().catch((error: unknown) => console.warn("could not schedule KV cache copies", error));
    }
  }
}

/** A tenant's sandbox's coordinator, by the sandbox key (storage/layout.ts). */
export function coordinatorFor(namespace: DurableObjectNamespace<SandboxCoordinator>, key: string): DurableObjectStub<SandboxCoordinator> {
  return namespace.get(namespace.idFromName(key));
}
