/**
 * Moves one delivered job through its lifecycle exactly once, whatever the queue does:
 * duplicates of a finished job are dropped, a job another consumer is running is left to it
 * (until its lease runs out), and every transition is a compare-and-swap on the R2 record.
 */

import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import type { JobError, JobRecord } from "../schemas/job";
import { isTerminal } from "../schemas/job";
import type { RunMessage } from "../schemas/queueMessages";
import type { JobStore, VersionedRecord } from "../storage/jobStore";
import type { ArtifactLimits } from "./artifacts";
import { executeJob } from "./executeJob";
import type { KvCacheScheduler } from "./kvCache";

/** What to do with the queue message once the job has been handled. */
export type Disposition = { action: "ack"; reason: string } | { action: "retry"; delaySeconds: number; reason: string };

export interface ProcessDeps {
  store: JobStore;
  bucket: R2Bucket;
  sandboxFor: (sandboxId: string) => SandboxPort;
  artifactLimits: ArtifactLimits;
  maxAttempts: number;
  kvCache: KvCacheScheduler;
  /** Wakes anyone long-polling the job; a lost signal only delays them. */
  announceFinished: (record: JobRecord) => Promise<void>;
  /** Resolves true if the job is cancelled while it runs, false once it has finished. */
  watchForCancel: (record: JobRecord, timeoutMs: number) => Promise<boolean>;
  /** Milliseconds left before this consumer invocation must be done. */
  remainingMs: () => number;
}

/** Time allowed beyond a job's own timeout for uploads and bookkeeping before its lease lapses. */
const LEASE_MARGIN_MS = 5 * 60 * 1000;

export function retryDelaySeconds(attempt: number): number {
  return Math.min(2 ** attempt, 300);
}

/** Milliseconds until another consumer's claim on the job lapses; 0 when nobody holds it. */
export function leaseRemainingMs(record: JobRecord, now = Date.now()): number {
  if (record.status !== "running" || !record.leaseUntil) return 0;
  return Math.max(0, Date.parse(record.leaseUntil) - now);
}

export async function processJob(message: RunMessage, deps: ProcessDeps): Promise<Disposition> {
  const { store } = deps;
  const { jobId } = message;
  const current = await store.getVersioned(jobId);
  if (!current) return { action: "ack", reason: "job record not found (expired or never created)" };
  if (isTerminal(current.record.status)) return { action: "ack", reason: "duplicate delivery of a finished job" };

  const leaseMs = leaseRemainingMs(current.record);
  if (leaseMs > 0) {
    return { action: "retry", delaySeconds: Math.ceil(leaseMs / 1000), reason: "another consumer is running this job" };
  }

  const request = message.request ?? (await store.readRequest(jobId));
  if (!request) {
    return finish(deps, current, message, {
      status: "failed",
      error: { code: "REQUEST_MISSING", message: "The job's stored request is gone; submit the job again" },
    });
  }
  const timeoutMs = request.type === "run" ? request.timeoutMs : 60_000;
  if (deps.remainingMs() < timeoutMs + 30_000) {
    // Not enough wall clock left in this invocation to run it to its timeout: hand it back.
    return { action: "retry", delaySeconds: 0, reason: "consumer invocation is nearly out of time" };
  }

  const startedAt = new Date().toISOString();
  const claimed = await store.replace(current, {
    ...current.record,
    status: "running",
    startedAt,
    attempts: current.record.attempts + 1,
    error: null,
    leaseUntil: new Date(Date.now() + timeoutMs + LEASE_MARGIN_MS).toISOString(),
  });
  if (!claimed) return { action: "retry", delaySeconds: 1, reason: "job record changed while claiming it" };

  try {
    const sandbox = deps.sandboxFor(claimed.record.sandboxId);
    // A cancel (POST /v1/jobs/{id}/cancel) aborts the command; the watch ends when the job does.
    const cancellation = new AbortController();
    void deps.watchForCancel(claimed.record, timeoutMs + LEASE_MARGIN_MS).then((cancelled) => {
      if (cancelled) cancellation.abort();
    });
    const outcome = await executeJob(
      { jobId, sandbox, bucket: deps.bucket, artifactLimits: deps.artifactLimits, signal: cancellation.signal },
      request,
    );
    return await finish(deps, claimed, message, outcome);
  } catch (error) {
    const fault = error instanceof SandboxOperationError ? error : undefined;
    const jobError: JobError = { code: fault?.code ?? "INTERNAL", message: fault?.message ?? "Unexpected error while running the job" };
    if (!fault) console.error(`job ${jobId}: unexpected error`, error);
    // Anything but a sandbox's final answer (a storage blip, a bug) is retried, within the same budget.
    const retryable = fault ? fault.retryable : true;
    if (retryable && claimed.record.attempts < deps.maxAttempts) {
      const requeued = await store.replace(claimed, { ...claimed.record, status: "queued", error: jobError, leaseUntil: null });
      if (!requeued) return { action: "ack", reason: "job was taken over while retrying" };
      return { action: "retry", delaySeconds: retryDelaySeconds(claimed.record.attempts), reason: `sandbox fault: ${jobError.message}` };
    }
    const finalError = retryable
      ? { code: jobError.code, message: `${jobError.message} (gave up after ${claimed.record.attempts} attempts)` }
      : jobError;
    return finish(deps, claimed, message, { status: "failed", error: finalError });
  }
}

/**
 * Writes the final record (R2 first, KV once its spacing allows), drops the request if it was
 * stored in R2, and wakes anyone waiting for the job.
 */
export async function finish(
  deps: Pick<ProcessDeps, "store" | "kvCache" | "announceFinished">,
  version: VersionedRecord,
  message: RunMessage,
  outcome: Partial<JobRecord> & Pick<JobRecord, "status">,
): Promise<Disposition> {
  const finishedAt = new Date();
  const startedAt = version.record.startedAt ? Date.parse(version.record.startedAt) : null;
  const final: JobRecord = {
    ...version.record,
    ...outcome,
    finishedAt: finishedAt.toISOString(),
    durationMs: startedAt === null ? null : finishedAt.getTime() - startedAt,
    leaseUntil: null,
  };
  const written = await deps.store.replace(version, final);
  if (!written) return { action: "ack", reason: "another consumer finished this job first" };
  await Promise.all([
    deps.kvCache.finished(final, message.kvWrittenAt),
    // Only a request too large for the message was stored; it holds env values and content.
    message.request === undefined && deps.store.deleteRequest(final.id),
    deps.announceFinished(final),
  ]);
  return { action: "ack", reason: `job ${final.status}` };
}
