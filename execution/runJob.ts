/**
 * Runs one job for the coordinator that holds it: checks its needs, claims it as its next
 * attempt under a lease that a heartbeat renews while the command runs (lease.ts), executes it,
 * and ends it through the coordinator's one finish path. The job's state lives in the
 * coordinator (JobControl); each attempt stores its outputs apart and the final record names
 * its attempt, so an attempt that outlived its runner can never publish over another.
 */
import { type ExecRequest, SandboxOperationError, type SandboxPort } from "../sandbox/port";
import type { JobError, JobRecord, JobRequest } from "../schemas/job";
import type { JobStore } from "../storage/jobStore";
import type { ArtifactLimits } from "./artifacts";
import type { CacheContext } from "./caches";
import { executeJob } from "./executeJob";
import type { JobControl, RunOutcome, SlotTake } from "./jobTypes";
import { JobLease, LEASE_MS } from "./lease";
import { checkNeeds } from "./needs";
import type { SecretSource } from "./secrets";

export interface RunnerDeps {
  control: JobControl;
  store: JobStore;
  bucket: R2Bucket;
  sandbox: SandboxPort;
  artifactLimits: ArtifactLimits;
  maxAttempts: number;
  /** Aborted when the API cancels this job while it runs (the coordinator relays the call). */
  cancelSignal: AbortSignal;
  /** Called once the job is claimed and about to run (not when it only waits for its needs). */
  onClaimed?: () => void;
  /** Receives the command's output as it is written (the coordinator serves it as live logs). */
  onOutput?: ExecRequest["onOutput"];
  /** Told as each try of the command starts (live logs keep where the stored output begins). */
  onTryStart?: () => void;
  /** Decrypts the tenant's secrets a job names. */
  secrets?: SecretSource;
  /** The tenant's cache index. */
  caches?: CacheContext;
  /** Takes the sandbox's place among its tenant's containers (TENANT_MAX_CONTAINERS) before the job is claimed. */
  containerSlot?: { take(): Promise<SlotTake> };
}

const CANCELLED: Pick<JobRecord, "status" | "error"> = {
  status: "failed",
  error: { code: "CANCELLED", message: "The job was cancelled while it ran; its command was ended" },
};

export function retryDelayMs(attempt: number): number {
  return Math.min(2 ** attempt, 300) * 1000;
}

async function ended(control: JobControl, outcome: Parameters<JobControl["finish"]>[0], attempt?: number): Promise<RunOutcome> {
  const finished = await control.finish(outcome, attempt);
  return { kind: "done", reason: finished ? `job ${outcome.status}` : "another attempt holds the job; this one is not published" };
}

/** Runs the coordinator's first unfinished job, as its record stands now. */
export async function runJob(record: JobRecord, heldRequest: JobRequest | undefined, deps: RunnerDeps): Promise<RunOutcome> {
  const { control } = deps;
  if (record.status === "running") {
    // Its coordinator runs one job at a time and is not running this one: the runner that
    // claimed it is gone (a crash, a restart). End whatever its command left running.
    await deps.sandbox.endStaleCommands().catch((error: unknown) => console.warn(`job ${record.id}: could not end a stale command`, error));
    if (!record.cancelRequested && record.attempts >= deps.maxAttempts) {
      // A job whose runs keep dying with their runner is not run again without end.
      return ended(control, {
        status: "failed",
        error: {
          code: "RUNNER_LOST",
          message: `The job's runner stopped during each of its ${record.attempts} attempts (did it exceed the runner's time, or take the runtime down?)`,
        },
      });
    }
    if (record.cancelRequested) return ended(control, CANCELLED);
    // Back in line as the dead attempt, so that the claim below makes it the next one.
    control.requeue(record.attempts, { code: "RUNNER_LOST", message: "Its runner stopped; run again" }, 0);
  }

  const verdict = await checkNeeds(deps.store, record);
  if (verdict.kind === "wait")
    return { kind: "wait", reason: `waiting for ${verdict.waitingFor.join(", ")}`, waitingFor: verdict.waitingFor };
  if (verdict.kind === "skip") return ended(control, { status: "skipped", error: verdict.error });

  const request = heldRequest ?? (await deps.store.readRequest(record.id));
  if (!request) {
    return ended(control, {
      status: "failed",
      error: { code: "REQUEST_MISSING", message: "The job's stored request is gone; submit the job again" },
    });
  }

  // Before the claim: a job waiting for its tenant's containers stays queued, not running.
  const slot = await deps.containerSlot?.take();
  if (slot && !slot.taken) return waitForContainer(deps, record, { code: "TENANT_CONTAINER_CAP", message: slot.reason });

  const claimed = control.claim(Date.now() + LEASE_MS);
  if (!claimed) return { kind: "done", reason: "the job was no longer queued (cancelled meanwhile)" };
  return runClaimed(claimed, request, deps);
}

/** Runs a claimed job under its lease and ends it (unless the attempt lost the job meanwhile). */
async function runClaimed(claimed: JobRecord, request: JobRequest, deps: RunnerDeps): Promise<RunOutcome> {
  const { control, store } = deps;
  const attempt = claimed.attempts;
  deps.onClaimed?.();
  const lease = new JobLease(control, attempt);
  const stop = AbortSignal.any([deps.cancelSignal, lease.cancelled, lease.lost]);
  const cancelled = () => deps.cancelSignal.aborted || lease.cancelled.aborted;
  try {
    const outcome = await executeJob(
      {
        at: { tenant: store.tenant, jobId: claimed.id, attempt },
        sandbox: deps.sandbox,
        bucket: deps.bucket,
        artifactLimits: deps.artifactLimits,
        signal: stop,
        onOutput: deps.onOutput,
        onTryStart: deps.onTryStart,
        readJob: (jobId) => store.readFinishedFromR2(jobId),
        secrets: deps.secrets,
        caches: deps.caches,
      },
      request,
    );
    if (!(await lease.end())) return { kind: "done", reason: "another attempt holds the job; this one is not published" };
    // A cancel that came as the job ended still ends it cancelled, with whatever output it had.
    return ended(control, cancelled() ? { ...outcome, ...CANCELLED } : outcome, attempt);
  } catch (error) {
    if (!(await lease.end())) return { kind: "done", reason: "another attempt holds the job; this one is not published" };
    if (cancelled()) return ended(control, CANCELLED, attempt);
    return failOrRetry(deps, claimed, error);
  }
}

/** How often a job waiting for a free container tries again, and how long after its submit it gives up. */
export const CAPACITY_RETRY_MS = 10_000;
export const CAPACITY_WAIT_LIMIT_MS = 60 * 60 * 1000;

function waitedTooLong(record: JobRecord): boolean {
  return Date.now() - Date.parse(record.createdAt) >= CAPACITY_WAIT_LIMIT_MS;
}

/** A queued job whose tenant's containers are all running jobs: it waits queued, saying why, for up to the same hour. */
async function waitForContainer(deps: RunnerDeps, record: JobRecord, refusal: JobError): Promise<RunOutcome> {
  if (waitedTooLong(record)) {
    const message = `Gave up after an hour waiting for one of its tenant's containers: ${refusal.message}`;
    return ended(deps.control, { status: "failed", error: { code: refusal.code, message } });
  }
  const waiting = {
    code: refusal.code,
    message: `Waiting for one of its tenant's containers: ${refusal.message}; it starts when one is free`,
  };
  deps.control.hold(waiting, CAPACITY_RETRY_MS);
  return { kind: "retry", delayMs: CAPACITY_RETRY_MS, reason: waiting.message };
}

async function failOrRetry(deps: RunnerDeps, claimed: JobRecord, error: unknown): Promise<RunOutcome> {
  const attempt = claimed.attempts;
  const jobId = claimed.id;
  const fault = error instanceof SandboxOperationError ? error : undefined;
  if (fault?.code === "CONTAINER_CAPACITY" && !waitedTooLong(claimed)) {
    // Queued, saying why, and not one of its attempts: it runs once a container frees up.
    const waiting = { code: fault.code, message: `Waiting for a free container: ${fault.message}` };
    if (!deps.control.requeue(attempt, waiting, CAPACITY_RETRY_MS, { attemptCounts: false })) {
      return { kind: "done", reason: "another attempt holds the job" };
    }
    return { kind: "retry", delayMs: CAPACITY_RETRY_MS, reason: waiting.message };
  }
  const jobError: JobError = { code: fault?.code ?? "INTERNAL", message: fault?.message ?? "Unexpected error while running the job" };
  if (!fault) console.error(`job ${jobId}: unexpected error`, error);
  // Anything but a sandbox's final answer (a storage blip, a bug) is retried, within the same budget.
  const retryable = fault ? fault.retryable : true;
  if (retryable && attempt < deps.maxAttempts) {
    const delayMs = retryDelayMs(attempt);
    if (!deps.control.requeue(attempt, jobError, delayMs)) return { kind: "done", reason: "another attempt holds the job" };
    return { kind: "retry", delayMs, reason: `sandbox fault: ${jobError.message}` };
  }
  const finalError = retryable ? { code: jobError.code, message: `${jobError.message} (gave up after ${attempt} attempts)` } : jobError;
  return ended(deps.control, { status: "failed", error: finalError }, attempt);
}
