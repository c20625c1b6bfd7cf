/**
 * SandboxCoordinator: one Durable Object per sandbox that owns its jobs' changing state (in its
 * SQLite, coordinator/jobTable.ts) and runs them: in submission order, one at a time, from its
 * alarm, so a long job in one sandbox never holds up another, and nothing holds a queue batch
 * open while commands run. Jobs arrive from the API at submit and, should that hand-over fail,
 * from the queue consumer or the sweeper (a duplicate changes nothing). Polls of unfinished jobs,
 * a sandbox's job list, long-polls, cancels and live logs are answered here.
 *
 * A coordinator that dies mid-job (a crash, a restart) leaves the job `running` in its table;
 * the alarm, re-armed at every lease renewal, or the sweeper's kick takes it over.
 */
import { DurableObject } from "cloudflare:workers";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { readConfig } from "../config";
import { cacheContextFor } from "../execution/caches";
import type { JobControl, RunOutcome } from "../execution/jobTypes";
import { LEASE_MS } from "../execution/lease";
import { retryDelayMs, runJob } from "../execution/runJob";
import { secretSourceFor } from "../execution/secrets";
import { countedEnv, operationBudget, withinBudget } from "../platform/operationBudget";
import { sandboxFactory } from "../sandbox/select";
import { commandBudgetMs, isTerminal, type JobRecord, type JobStatus, type OutputOffsets } from "../schemas/job";
import { JobStore } from "../storage/jobStore";
import { sandboxKey } from "../storage/layout";
import { ContainerSlot } from "./containerSlot";
import { type FinalOutcome, JobFinisher } from "./finishing";
import { type HandedJob, type HeldJob, JobTable } from "./jobTable";
import { LiveLog, type OutputStream } from "./liveLog";
import { Signal } from "./signals";

/** Cloudflare gives an alarm invocation 15 minutes of wall clock; jobs start only if they fit. */
const ALARM_BUDGET_MS = 15 * 60 * 1000;
/** Kept free in an alarm invocation beyond a job's timeout: claiming, uploads, the final record. */
const JOB_OVERHEAD_MS = 60 * 1000;
/**
 * The project budgets 1,000 operations per invocation. A job makes about 30 (SDK calls, outputs,
 * its final record), plus about 3 per artifact (up to 200): after this many jobs, or after one
 * that collected artifacts, the coordinator carries on in a fresh invocation.
 */
const JOBS_PER_INVOCATION = 8;
/** How often a job waiting for the jobs it needs looks again, should their wake-up be lost. */
const NEEDS_RECHECK_MS = 30 * 1000;
/** A job that ran this long renewed its lease often enough to count as heavy, too. */
const HEAVY_JOB_MS = 60 * 1000;
/**
 * Finished jobs published per pass: each is about four operations (R2, KV, a wake-up, the
 * removal of its leftovers), so a pass stays far inside an invocation's budget.
 */
const PUBLISH_PER_PASS = 50;

export type CancelOutcome =
  | { outcome: "cancelled" | "cancelling"; record: JobRecord }
  | { outcome: "finished"; record: JobRecord }
  | { outcome: "unknown" };

export class SandboxCoordinator extends DurableObject<Env> {
  private readonly table: JobTable;
  /** Raised when a job finishes: wakes long-polls. */
  private readonly finished = new Signal<true>();
  private readonly finisher: JobFinisher;
  /** The job this object is running now, how to cancel it, and its output so far. */
  private running: { jobId: string; cancel: AbortController; log: LiveLog; claimed: boolean; slot: ContainerSlot } | undefined;
  /** The stop of this sandbox's idle container that another sandbox of its tenant asked for, under way. */
  private stoppingContainer: Promise<unknown> = Promise.resolve();
  /** Raised when a job starts running here: wakes followers of its logs that came early. */
  private readonly started = new Signal<true>();
  private draining: Promise<void> | undefined;
  private drainStartedAt = 0;
  /** Work arrived while draining: look again before letting the alarm go. */
  private arrivedWhileDraining = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
    this.table = new JobTable(ctx.storage);
    const retentionSeconds = readConfig(env).retentionSeconds;
    this.finisher = new JobFinisher(
      this.table,
      this.finished,
      env,
      (tenant) => new JobStore(env.LOOKUPS, env.JOB_OUTPUT, retentionSeconds, tenant),
    );
  }

  /** Takes jobs in (from the API at submit, the queue consumer and the sweeper) and starts them. */
  async enqueue(jobs: HandedJob[]): Promise<void> {
    if (this.table.add(jobs) > 0) await this.wake();
  }

  /**
   * The sweeper's call: makes sure held work goes on and the tenant's directory knows this
   * sandbox's load; returns the given jobs this coordinator does not know.
   */
  async reconcile(jobIds: string[]): Promise<string[]> {
    await this.wake();
    const any = this.table.anyRecord();
    if (any) await this.reportUnfinished(any);
    return jobIds.filter((jobId) => !this.table.has(jobId));
  }

  /** How many of this sandbox's jobs are unfinished. */
  async unfinishedCount(): Promise<number> {
    return this.table.unfinishedCount();
  }

  /** A job that some of this sandbox's jobs need has finished: they check their needs again now. */
  async needsSettled(): Promise<void> {
    if (this.table.releaseWaiting() > 0) await this.wake();
  }

  /** The job as it stands (final once finished); undefined when this coordinator does not know it. */
  async job(jobId: string): Promise<JobRecord | undefined> {
    return this.shown([jobId])[0] ?? undefined;
  }

  /** Several jobs as they stand, in order; null for those this coordinator does not know. */
  async jobs(jobIds: string[]): Promise<(JobRecord | null)[]> {
    return this.shown(jobIds);
  }

  /** Jobs as the API shows them, in order (null for an unknown one): a queued one says what it waits for. */
  private shown(jobIds: string[]): (JobRecord | null)[] {
    const known = this.table.withWaitingReasons(jobIds.flatMap((jobId) => this.table.record(jobId) ?? []));
    const byId = new Map(known.map((record) => [record.id, record]));
    return jobIds.map((jobId) => byId.get(jobId) ?? null);
  }

  /** The sandbox is being deleted: the jobs it has had leave its list (see JobTable.unlistAll). */
  async unlistJobs(): Promise<void> {
    this.table.unlistAll();
  }

  /** A page of this sandbox's jobs, newest first. */
  async list(options: { status?: JobStatus; limit: number; cursor?: string }): Promise<{ jobs: JobRecord[]; nextCursor: string | null }> {
    const page = this.table.page(options);
    return { ...page, jobs: this.table.withWaitingReasons(page.jobs) };
  }

  /**
   * Resolves once every one of the jobs has finished, or after `timeoutMs`, with the jobs as
   * they stand (null for one this coordinator does not know yet). The table is the truth: the
   * wake-ups only say when to read it again.
   */
  async waitForJobs(jobIds: string[], timeoutMs: number): Promise<(JobRecord | null)[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const records = this.shown(jobIds);
      const pending = jobIds.filter((_, index) => {
        const record = records[index];
        return !record || !isTerminal(record.status);
      });
      if (pending.length === 0 || Date.now() >= deadline) return records;
      await this.finished.waitAny(pending, deadline - Date.now());
    }
  }

  /**
   * Cancels a job: a queued one ends now (it never runs); a running one has the cancel stored
   * (its lease renewals read it too) and its command ended by its runner, which ends the job.
   */
  async cancel(jobId: string): Promise<CancelOutcome> {
    const [result] = await this.cancelJobs([jobId]);
    return result ?? { outcome: "unknown" };
  }

  /** Cancels several jobs at once (a batch's, a sandbox's); their final records are published in passes. */
  async cancelJobs(jobIds: string[]): Promise<CancelOutcome[]> {
    const results = jobIds.map((jobId) => this.cancelOne(jobId));
    await this.afterFinishing();
    return results;
  }

  /** Cancels every unfinished job of this sandbox (it is being deleted); returns how many. */
  async cancelAll(): Promise<{ cancelled: number; running: string[] }> {
    const outcomes = this.table.unfinishedIds(Number.MAX_SAFE_INTEGER).map((jobId) => ({ jobId, result: this.cancelOne(jobId) }));
    await this.afterFinishing();
    return {
      cancelled: outcomes.filter(({ result }) => result.outcome === "cancelled" || result.outcome === "cancelling").length,
      running: outcomes.filter(({ result }) => result.outcome === "cancelling").map(({ jobId }) => jobId),
    };
  }

  /**
   * A job whose queue message used up its retries: one this coordinator holds still runs (or
   * has finished); one it never got ends failed with DELIVERY_FAILED.
   */
  async failUndelivered(submitted: JobRecord, reason: string): Promise<"held" | "failed"> {
    if (this.table.has(submitted.id)) return "held";
    this.table.add([{ submitted, leftovers: true }]);
    this.finisher.finish(submitted.id, {
      status: "failed",
      error: { code: "DELIVERY_FAILED", message: `Job could not be run after repeated attempts: ${reason}` },
    });
    await this.afterFinishing();
    return "failed";
  }

  /**
   * The running job's output from `from` on, as Server-Sent Events, live until its command ends
   * or `maxMs` passes; a job about to start is waited for up to `maxMs`. Null when this object is
   * not running the job (it has finished, or has not started in that time).
   */
  async followLogs(jobId: string, from: OutputOffsets, maxMs: number): Promise<ReadableStream<Uint8Array> | null> {
    const runningIt = () => (this.running?.jobId === jobId && this.running.claimed ? this.running : undefined);
    if (!runningIt()) await this.started.wait(jobId, maxMs);
    return runningIt()?.log.follow(from, maxMs) ?? null;
  }

  /**
   * Another sandbox of the tenant took this one's container slot (it was idle): the container
   * stops now, its workspace saved, unless a job of this sandbox has started meanwhile (that job
   * took a slot of its own). `key` is this sandbox's key, which an alarm is not told.
   */
  async stopIdleContainer(key: string): Promise<"stopped" | "busy"> {
    // Busy only once the running job holds a slot: one still taking a slot (or refused one) has
    // not reached the container, which would otherwise stay awake holding no slot at all.
    if (this.running?.slot.holds) return "busy";
    const stopping = sandboxFactory(this.env)(key).stopContainer();
    this.stoppingContainer = stopping.catch(() => undefined);
    await stopping;
    return "stopped";
  }

  /** A slot among the tenant's containers may be free: a job waiting for one tries now. */
  async containerSlotFree(): Promise<void> {
    if (this.table.releaseHeld("TENANT_CONTAINER_CAP")) await this.wake();
  }

  /** What the running job has written to one stream so far; null when this object is not running it. */
  async outputSoFar(jobId: string, stream: OutputStream): Promise<Uint8Array | null> {
    return this.running?.jobId === jobId ? this.running.log.snapshot(stream) : null;
  }

  /** Publishes a pass of finished jobs, and tells the tenant's directory how many are left unfinished. */
  private async publish(): Promise<void> {
    const [published] = await this.finisher.publish(PUBLISH_PER_PASS);
    if (published) await this.reportUnfinished(published);
  }

  /** The job quota counts from here: the tenant's directory learns this sandbox's unfinished jobs. */
  private async reportUnfinished(any: JobRecord): Promise<void> {
    await tenantDirectoryFor(this.env.TENANT_DIRECTORY, any.tenant)
      .reportUnfinished(any.sandboxId, this.table.unfinishedCount())
      .catch((error: unknown) => console.warn(`sandbox ${any.sandboxId}: could not report its unfinished jobs`, error));
  }

  override alarm(): Promise<void> {
    return withinBudget(operationBudget(this.env), "SandboxCoordinator alarm", () => this.runAlarm());
  }

  private async runAlarm(): Promise<void> {
    this.table.purgeExpired();
    await this.publish();
    await this.drain();
    await this.armAlarm();
  }

  private cancelOne(jobId: string): CancelOutcome {
    const record = this.table.record(jobId);
    if (!record) return { outcome: "unknown" };
    if (isTerminal(record.status)) return { outcome: "finished", record };
    if (record.status === "running") {
      this.table.requestCancel(jobId);
      if (this.running?.jobId === jobId) this.running.cancel.abort(new Error("cancelled"));
      return { outcome: "cancelling", record: this.table.record(jobId) ?? record };
    }
    const final = this.finisher.finish(jobId, { status: "failed", error: { code: "CANCELLED", message: "Cancelled before it ran" } });
    return final ? { outcome: "cancelled", record: final } : { outcome: "finished", record: this.table.record(jobId) ?? record };
  }

  /** After jobs ended outside a run: the first pass of publication now, the rest from the alarm. */
  private async afterFinishing(): Promise<void> {
    await this.publish();
    await this.wake();
  }

  /**
   * Sets the alarm for what is due next (the first job in line, a publication), unless this
   * object is draining now (then it looks again when the drain ends). A job left `running` by a
   * runner that died (a crash, a restart) is taken over at once: this object is not draining,
   * so that runner is gone.
   */
  private async wake(): Promise<void> {
    if (this.drainIsAlive()) this.arrivedWhileDraining = true;
    else await this.armAlarm();
  }

  private async armAlarm(): Promise<void> {
    const due = [this.table.firstNotBefore(), this.table.nextPublicationDue()].filter((at): at is number => at !== undefined);
    if (due.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Date.now(), Math.min(...due)));
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
        await this.armAlarm();
      }
    });
    return this.draining;
  }

  /** The live log of `jobId` if it is the job running here. */
  private liveLogOf(jobId: string): LiveLog | undefined {
    return this.running?.jobId === jobId ? this.running.log : undefined;
  }

  /** What a run may do to its job's state: the table's transitions, for this job only. */
  private controlFor(jobId: string): JobControl {
    return {
      claim: (leaseUntil) => this.table.claim(jobId, leaseUntil),
      renew: async (attempt, leaseUntil) => {
        const renewed = this.table.renew(jobId, attempt, leaseUntil, this.liveLogOf(jobId)?.end);
        // Should this object die mid-job, the alarm fires once the lease has lapsed.
        if (renewed.held) await this.ctx.storage.setAlarm(leaseUntil);
        this.running?.slot.renewIfDue();
        return renewed;
      },
      hold: (error, delayMs) => this.table.holdQueued(jobId, error, Date.now() + delayMs),
      requeue: (attempt, error, delayMs, options = { attemptCounts: true }) =>
        this.table.requeue(jobId, attempt, error, Date.now() + delayMs, { ...options, liveLogEnd: this.liveLogOf(jobId)?.end }),
      finish: async (outcome: FinalOutcome, attempt) => {
        const log = this.liveLogOf(jobId);
        const storedOutputAt = log ? storedOutputStart(log, outcome) : null;
        const final = this.finisher.finish(jobId, { ...outcome, storedOutputAt }, attempt);
        if (final) await this.publish();
        return final !== undefined;
      },
    };
  }

  private async runHeldJobs(): Promise<void> {
    const startedAt = Date.now();
    const config = readConfig(this.env);
    const sandboxFor = sandboxFactory(this.env);
    let jobsRun = 0;
    let watchdogAt = 0;
    // After a job that collected artifacts or renewed its lease for a while, this invocation has
    // used much of its operations: the next job gets a fresh one.
    let heavyJobRun = false;
    try {
      for (let held: HeldJob | undefined = this.table.next(); held; held = this.table.next()) {
        const { record } = held;
        if (held.notBefore > Date.now()) return;
        const budgetMs = held.request?.type === "run" ? commandBudgetMs(held.request) : 60_000;
        // The first job of an invocation always fits (the longest allowed tries plus the overhead
        // is the budget); a later one only if what is left of the budget allows.
        const outOfTime = jobsRun > 0 && Date.now() - startedAt + budgetMs + JOB_OVERHEAD_MS > ALARM_BUDGET_MS;
        if (outOfTime || jobsRun >= JOBS_PER_INVOCATION || heavyJobRun) {
          // Not enough of this invocation left (time or operations): carry on in a fresh one.
          await this.ctx.storage.setAlarm(Date.now());
          return;
        }
        jobsRun++;
        const jobStartedAt = Date.now();
        const slot = new ContainerSlot(this.env, record.tenant, record.sandboxId, config.tenantMaxContainers, () => this.stoppingContainer);
        const log = new LiveLog(held.liveLogEnd);
        const running = { jobId: record.id, cancel: new AbortController(), log, claimed: false, slot };
        this.running = running;
        // A stop of this sandbox's idle container, asked for before this job began, ends first.
        await this.stoppingContainer;
        // Should this object die mid-job, the alarm fires again once the lease has lapsed. One
        // watchdog covers a run of quick jobs; lease renewals keep it ahead of a long one.
        if (watchdogAt - Date.now() < LEASE_MS / 2) {
          watchdogAt = Date.now() + LEASE_MS;
          await this.ctx.storage.setAlarm(watchdogAt);
        }
        const outcome: RunOutcome = await runJob(record, held.request, {
          control: this.controlFor(record.id),
          store: new JobStore(this.env.LOOKUPS, this.env.JOB_OUTPUT, config.retentionSeconds, record.tenant),
          bucket: this.env.JOB_OUTPUT,
          sandbox: sandboxFor(sandboxKey(record.tenant, record.sandboxId)),
          artifactLimits: { maxFiles: config.artifactMaxFiles, maxTotalBytes: config.artifactMaxTotalBytes },
          maxAttempts: config.maxJobAttempts,
          cancelSignal: running.cancel.signal,
          onClaimed: () => {
            running.claimed = true;
            this.started.raise(record.id);
          },
          onOutput: (stream, text, skippedBefore) => running.log.append(stream, text, skippedBefore),
          onTryStart: () => running.log.tryStarted(),
          secrets: secretSourceFor(this.env, record.tenant),
          caches: cacheContextFor(this.env, record.tenant),
          containerSlot: slot,
        }).catch((error: unknown): RunOutcome => {
          // A storage error outside the run itself (reading needs or the request): try again.
          console.error(`job ${record.id}: error around its run, will retry`, error);
          const delayMs = retryDelayMs(1);
          this.table.deferQueued(record.id, Date.now() + delayMs);
          return { kind: "retry", delayMs, reason: "storage error" };
        });
        running.log.close();
        this.running = undefined;
        // Not running first: the sandbox woken here may take this idle container's slot at once.
        await slot.idle();
        // A request stored in R2 is a large file write, which collects nothing.
        heavyJobRun = (held.request?.type === "run" && held.request.artifacts.length > 0) || Date.now() - jobStartedAt > HEAVY_JOB_MS;
        if (outcome.kind === "wait") {
          // First in line and held: this sandbox's later jobs wait too, keeping the order. A
          // finishing job it needs wakes it (needsSettled); the recheck covers a lost wake-up.
          this.table.waitForNeeds(record.id, outcome.waitingFor, Date.now() + NEEDS_RECHECK_MS);
          return;
        }
        // A retry keeps the job first in line, its backoff in the table: later jobs wait for it.
        if (outcome.kind === "retry") return;
      }
    } finally {
      this.running = undefined;
    }
  }
}

/**
 * Where a finished job's stored output begins among its live log's offsets: the last try's start,
 * or, for a stream whose last try stored nothing (its command never started), the live
 * log's end, so a follower that reconnects after the end is told of what it missed as a gap.
 */
function storedOutputStart(log: LiveLog, outcome: FinalOutcome): OutputOffsets | null {
  const tryFrom = log.lastTryFrom;
  const end = log.end;
  const at = {
    stdout: outcome.stdout ? tryFrom.stdout : end.stdout,
    stderr: outcome.stderr ? tryFrom.stderr : end.stderr,
  };
  return at.stdout > 0 || at.stderr > 0 ? at : null;
}
