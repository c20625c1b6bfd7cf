/** The shapes a sandbox's coordinator and the job-running library share. */
import type { JobRecord } from "../schemas/job";
import type { JobOutcome } from "./executeJob";

/**
 * What a run needs from the coordinator that holds the job: its state lives in the
 * coordinator's SQLite (coordinator/jobTable.ts), changed there and nowhere else.
 */
export interface JobControl {
  /** Marks the job running as its next attempt under a lease; the record as claimed, or undefined if it was not queued. */
  claim(leaseUntil: number): JobRecord | undefined;
  /** Extends the attempt's lease; whether it still holds the job and whether a cancel was asked. */
  renew(attempt: number, leaseUntil: number): Promise<{ held: boolean; cancelRequested: boolean }>;
  /** Puts a failed attempt back first in line, to run again after `delayMs`; `attemptCounts: false` gives the attempt back. */
  requeue(attempt: number, error: JobRecord["error"] & object, delayMs: number, options?: { attemptCounts: boolean }): boolean;
  /** Keeps a queued job first in line until `delayMs` have passed, its `error` saying why it waits. */
  hold(error: JobRecord["error"] & object, delayMs: number): void;
  /** The one way a job ends (coordinator/finishing.ts); false when the attempt no longer held it. */
  finish(outcome: Partial<JobOutcome> & Pick<JobRecord, "status">, attempt?: number): Promise<boolean>;
}

/**
 * Done: the job has ended (or another attempt holds it). Retry: it stays first in line and runs
 * again later. Wait: it stays first in line until the jobs it needs have finished.
 */
export type RunOutcome =
  | { kind: "done"; reason: string }
  | { kind: "retry"; delayMs: number; reason: string }
  | { kind: "wait"; reason: string; waitingFor: string[] };

/** A sandbox's place among its tenant's containers (coordinator/containerSlot.ts); `reason` says why it has none. */
export type SlotTake = { taken: true } | { taken: false; reason: string };
