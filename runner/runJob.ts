/**
 * Runs one job for its sandbox's coordinator (a duplicate delivery never starts a second run; a
 * job runs again only when its runner died mid-run): claims it with a short lease that a
 * heartbeat renews while the command runs (lease.ts),
 * executes it, and writes the final record. Every transition is a compare-and-swap on the R2
 * record, so a stale runner can neither move a job backwards nor publish over the attempt that
 * finished it (each attempt stores its outputs apart; the final record names its attempt).
 */
import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { isTerminal, type JobError, type JobRecord, type JobRequest } from "../schemas/job";
import type { VersionedRecord } from "../storage/jobStore";
import type { ArtifactLimits } from "./artifacts";
import { executeJob } from "./executeJob";
import { type FinishDeps, finish } from "./finish";
import type { QueuedJob, RunOutcome } from "./jobTypes";
import { JobLease, LEASE_MS } from "./lease";
import { checkNeeds, skippedError } from "./needs";

export interface RunnerDeps extends FinishDeps {
  bucket: R2Bucket;
  sandbox: SandboxPort;
  artifactLimits: ArtifactLimits;
  maxAttempts: number;
  /** Aborted when the API cancels this job while it runs (the coordinator relays the call). */
  cancelSignal: AbortSignal;
  /** Called with each renewed lease's end, so a crashed runner's job is found once it lapses. */
  onLeaseRenewed: (leaseUntil: number) => Promise<void>;
  /** Called once the job is claimed and about to run (not when it only waits for its needs). */
  onClaimed?: () => void;
  /** Receives the command's output as it is written (the coordinator serves it as live logs). */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
}

const CANCELLED: Pick<JobRecord, "status" | "error"> = {
  status: "failed",
  error: { code: "CANCELLED", message: "The job was cancelled while it ran; its command was ended" },
};

export function retryDelayMs(attempt: number): number {
  return Math.min(2 ** attempt, 300) * 1000;
}

/** The record as a runner claims it: running, as the next attempt, under a fresh lease. */
function claimedRecord(record: JobRecord): JobRecord {
  return {
    ...record,
    status: "running",
    startedAt: new Date().toISOString(),
    attempts: record.attempts + 1,
    error: null,
    leaseUntil: new Date(Date.now() + LEASE_MS).toISOString(),
  };
}

export async function runJob(job: QueuedJob, deps: RunnerDeps): Promise<RunOutcome> {
  const { store } = deps;
  if (job.created && job.request && job.created.record.needs.length === 0) {
    // Handed over at submit: claimed against the record as created, without reading it first.
    // If nobody changed it since, it is queued, never ran and has no cancel, so the checks below
    // would pass; if anybody did, the compare-and-swap fails and the record is read as usual.
    // (A job that needs others always takes the long way: its needs are checked first.)
    const claimed = await store.replace(job.created, claimedRecord(job.created.record));
    if (claimed) return runClaimed(job, job.request, claimed, deps);
  }
  const current = await store.getVersioned(job.jobId);
  if (!current) return { kind: "done", reason: "job record not found (expired or never created)" };
  if (isTerminal(current.record.status)) return { kind: "done", reason: "the job has already finished" };

  if (current.record.status === "running") {
    // Its coordinator runs one job at a time and is not running this one: the runner that
    // claimed it is gone (a crash or a restart). End whatever its command left running.
    await deps.sandbox.endCommands().catch((error: unknown) => console.warn(`job ${job.jobId}: could not end a stale command`, error));
    if (!current.record.cancelRequested && current.record.attempts >= deps.maxAttempts) {
      // A job whose runs keep dying with their runner (it outran the runner's budget, or brought
      // it down) is not run again without end.
      return finish(deps, current, job, {
        status: "failed",
        error: {
          code: "RUNNER_LOST",
          message: `The job's runner stopped during each of its ${current.record.attempts} attempts (did it exceed the runner's time, or take the runtime down?)`,
        },
      });
    }
  }
  if (current.record.cancelRequested) return finish(deps, current, job, CANCELLED);
  if (current.record.status === "queued") {
    const verdict = await checkNeeds(store, current.record);
    if (verdict.kind === "wait") return { kind: "wait", reason: `waiting for ${verdict.waitingFor.join(", ")}` };
    if (verdict.kind === "skip") return finish(deps, current, job, { status: "skipped", error: skippedError(verdict.because) });
  }

  const request = job.request ?? (await store.readRequest(job.jobId));
  if (!request) {
    return finish(deps, current, job, {
      status: "failed",
      error: { code: "REQUEST_MISSING", message: "The job's stored request is gone; submit the job again" },
    });
  }

  const claimed = await store.replace(current, claimedRecord(current.record));
  if (!claimed) return { kind: "retry", delayMs: 0, reason: "job record changed while claiming it" };
  return runClaimed(job, request, claimed, deps);
}

/** Runs a claimed job under its lease and publishes the outcome (unless another runner took it over). */
async function runClaimed(job: QueuedJob, request: JobRequest, claimed: VersionedRecord, deps: RunnerDeps): Promise<RunOutcome> {
  const { store } = deps;
  deps.onClaimed?.();
  const lease = new JobLease(deps.store, claimed, deps.onLeaseRenewed);
  const stop = AbortSignal.any([deps.cancelSignal, lease.cancelled, lease.lost]);
  try {
    const outcome = await executeJob(
      {
        at: { tenant: store.tenant, jobId: job.jobId, attempt: claimed.record.attempts },
        sandbox: deps.sandbox,
        bucket: deps.bucket,
        artifactLimits: deps.artifactLimits,
        signal: stop,
        onOutput: deps.onOutput,
        readJob: async (jobId) => (await store.getVersioned(jobId))?.record,
      },
      request,
    );
    let latest = await lease.end();
    if (!latest) return { kind: "done", reason: "another runner took the job over; this attempt is not published" };
    if (deps.cancelSignal.aborted && !latest.record.cancelRequested) {
      // The cancel came straight from the API, which stored it on the record after the lease last
      // read it: read it again, so that this attempt still publishes what the command wrote.
      const fresh = await store.getVersioned(job.jobId);
      if (fresh?.record.status === "running" && fresh.record.attempts === claimed.record.attempts) latest = fresh;
    }
    // A cancel that came as the job ended still ends it cancelled, with whatever output it had.
    return finish(deps, latest, job, latest.record.cancelRequested ? { ...outcome, ...CANCELLED } : outcome);
  } catch (error) {
    const latest = await lease.end();
    if (!latest) return { kind: "done", reason: "another runner took the job over; this attempt is not published" };
    if (deps.cancelSignal.aborted || latest.record.cancelRequested) return finish(deps, latest, job, CANCELLED);
    return failOrRetry(deps, latest, job, error);
  }
}

async function failOrRetry(deps: RunnerDeps, version: VersionedRecord, job: QueuedJob, error: unknown): Promise<RunOutcome> {
  const fault = error instanceof SandboxOperationError ? error : undefined;
  const jobError: JobError = { code: fault?.code ?? "INTERNAL", message: fault?.message ?? "Unexpected error while running the job" };
  if (!fault) console.error(`job ${job.jobId}: unexpected error`, error);
  // Anything but a sandbox's final answer (a storage blip, a bug) is retried, within the same budget.
  const retryable = fault ? fault.retryable : true;
  const attempts = version.record.attempts;
  if (retryable && attempts < deps.maxAttempts) {
    const requeued = await deps.store.replace(version, { ...version.record, status: "queued", error: jobError, leaseUntil: null });
    if (!requeued) return { kind: "retry", delayMs: 0, reason: "job record changed while requeueing it" };
    return { kind: "retry", delayMs: retryDelayMs(attempts), reason: `sandbox fault: ${jobError.message}` };
  }
  const finalError = retryable ? { code: jobError.code, message: `${jobError.message} (gave up after ${attempts} attempts)` } : jobError;
  return finish(deps, version, job, { status: "failed", error: finalError });
}
