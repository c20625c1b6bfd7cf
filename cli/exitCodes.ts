/**
 * The CLI's exit codes. A job's own command decides `run` and `wait`, as if it had run here;
 * the CLI's own codes sit where timeout(1), env(1) and shells put theirs.
 */
import type { BatchView, JobView } from "../client";

export const ExitCode = {
  OK: 0,
  /** `pipeline run`: at least one job did not succeed; `status`: the job or batch finished without succeeding. */
  FAILED: 1,
  /** Bad arguments, a bad pipeline file, or a job the service refused as invalid (400, 422). */
  USAGE: 2,
  /** The job ran out of its timeout (timeout(1) exits 124 too). */
  TIMED_OUT: 124,
  /**
   * The CLI could not do its work: the service was unreachable or refused the request, or the
   * job failed without an exit code of its own (a sandbox fault, a failed file job, skipped).
   */
  SERVICE_ERROR: 125,
  /** The job was cancelled (by Ctrl-C, `cancel`, or deleting its sandbox): 128 + SIGINT. */
  CANCELLED: 130,
  /** `status` and `pipeline status`: the job or batch is still queued or running (as `systemctl is-active` says "not yet"). */
  STILL_RUNNING: 3,
} as const;

/** What `run` and `wait` exit with for a finished job. */
export function exitCodeOf(job: JobView): number {
  if (job.status === "succeeded") return ExitCode.OK;
  if (job.status === "timed_out") return ExitCode.TIMED_OUT;
  if (job.error?.code === "CANCELLED") return ExitCode.CANCELLED;
  // The command's own code: NONZERO_EXIT, or 128 + n when a signal killed it.
  if (job.exitCode !== null && job.exitCode !== 0) return job.exitCode;
  return ExitCode.SERVICE_ERROR;
}

/** What `pipeline status` (and `status` of a batch) exits with: 0 succeeded, 1 failed, 3 not finished yet. */
export function batchExitCode(batch: BatchView): number {
  if (batch.status === "succeeded") return ExitCode.OK;
  return batch.status === "failed" ? ExitCode.FAILED : ExitCode.STILL_RUNNING;
}

/** What `status` of a job exits with, as for a batch: 0 succeeded, 1 finished otherwise, 3 not finished yet. */
export function jobStatusExitCode(job: JobView): number {
  if (job.status === "succeeded") return ExitCode.OK;
  return job.status === "queued" || job.status === "running" ? ExitCode.STILL_RUNNING : ExitCode.FAILED;
}
