/** The shapes a sandbox's coordinator and its job runner share. */
import type { JobRequest } from "../schemas/job";
import type { VersionedRecord } from "../storage/jobStore";

/** A job as its coordinator holds it. */
export interface QueuedJob {
  jobId: string;
  /** The tenant's sandbox, by its platform-wide name (storage/layout.ts `sandboxKey`). */
  sandboxKey: string;
  /** When the API wrote the record to KV (0: it did not): KV's next write to the key must wait a second from here. */
  kvWrittenAt: number;
  /** The request, unless it was too large to carry (then it waits in R2). */
  request?: JobRequest;
  /**
   * The record as the API created it, with its R2 etag (handed over at submit only, and dropped
   * once a run was tried): its first claim compares against it instead of reading R2 first.
   */
  created?: VersionedRecord;
}

/**
 * Done: drop the job from the sandbox's queue. Retry: keep it first in line and try again later.
 * Wait: keep it first in line until the jobs it needs have finished.
 */
export type RunOutcome =
  | { kind: "done"; reason: string }
  | { kind: "retry"; delayMs: number; reason: string }
  | { kind: "wait"; reason: string };
