/**
 * Submitting jobs and waiting for them: shared by the v1 routes and the original synchronous
 * routes, which are the same pipeline plus a wait.
 */
import { monotonicFactory } from "ulid";
import type { AppConfig } from "../config";
import { INLINE_REQUEST_MAX_BYTES, isTerminal, type JobRecord, type JobRequest, type RunMessage, summarizeRequest } from "../schemas/job";
import { JobStore } from "../storage/jobStore";
import { ApiError, ErrorCode } from "./errors";

/** Monotonic within a millisecond, so jobs submitted together keep their order. */
const newJobId = monotonicFactory();

export const MAX_WAIT_SECONDS = 60;

export class JobService {
  readonly store: JobStore;
  constructor(
    private readonly env: Env,
    private readonly config: AppConfig,
  ) {
    this.store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, config.retentionSeconds);
  }

  async submit(sandboxId: string, request: JobRequest): Promise<JobRecord> {
    const now = new Date();
    const record: JobRecord = {
      id: newJobId(now.getTime()),
      sandboxId,
      type: request.type,
      request: summarizeRequest(request),
      status: "queued",
      exitCode: null,
      createdAt: now.toISOString(),
      startedAt: null,
      finishedAt: null,
      durationMs: null,
      attempts: 0,
      error: null,
      stdout: null,
      stderr: null,
      artifacts: [],
      skippedArtifacts: [],
      expiresAt: new Date(now.getTime() + this.config.retentionSeconds * 1000).toISOString(),
      leaseUntil: null,
    };
    const inline = new TextEncoder().encode(JSON.stringify(request)).byteLength <= INLINE_REQUEST_MAX_BYTES;
    const { kvWrittenAt } = await this.store.create(record, inline ? undefined : request);
    const message: RunMessage = { kind: "run", jobId: record.id, sandboxId, kvWrittenAt, ...(inline ? { request } : {}) };
    try {
      await this.env.JOB_QUEUE.send(message, { contentType: "json" });
    } catch (error) {
      console.error(`job ${record.id}: queue send failed`, error);
      const version = await this.store.getVersioned(record.id);
      if (version) {
        await this.store.replace(version, {
          ...record,
          status: "failed",
          finishedAt: new Date().toISOString(),
          error: { code: ErrorCode.QUEUE_UNAVAILABLE, message: "The job could not be queued" },
        });
      }
      throw new ApiError(503, ErrorCode.QUEUE_UNAVAILABLE, "The job queue is unavailable; nothing was run. Try again shortly.");
    }
    return record;
  }

  async get(jobId: string): Promise<JobRecord> {
    const record = await this.store.get(jobId);
    if (!record) throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
    return record;
  }

  /**
   * Polls until the job has finished or `waitMs` has passed: every 5 ms at first, since most
   * jobs finish within tens of milliseconds, backing off to 500 ms so a long wait stays within
   * a request's subrequest budget (about 130 polls for 60 s). Each poll is a conditional R2
   * read that returns no body while the job is unchanged.
   */
  async waitFor(jobId: string, waitMs: number): Promise<JobRecord> {
    const deadline = Date.now() + waitMs;
    let record = await this.get(jobId);
    let etag: string | undefined;
    let pause = 5;
    while (!isTerminal(record.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(0, deadline - Date.now()))));
      pause = Math.min(Math.ceil(pause * 1.3), 500);
      const latest = await this.store.getIfChanged(jobId, etag);
      if (latest === undefined) throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
      if (latest !== "unchanged") {
        record = latest.record;
        etag = latest.etag;
      }
    }
    return record;
  }
}
