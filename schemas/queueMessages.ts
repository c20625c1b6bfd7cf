/**
 * Messages on the job queue. Both kinds stay far below Queues' 128 KB message limit: a run
 * message carries a request only when it is small, a cache message a bounded number of records.
 */
import { z } from "zod";
import { SandboxKey, TenantId } from "./ids";
import { JobRecord, JobRequest } from "./job";

/** Requests up to this size travel inside their queue message; larger ones wait in R2. */
export const INLINE_REQUEST_MAX_BYTES = 64 * 1024;

const JobId = z.string().min(1).max(64);

/**
 * Runs a job. Carries the request itself when it is small (one storage read fewer per job) and
 * stays far below Queues' 128 KB message limit either way.
 */
export const RunMessage = z.object({
  kind: z.literal("run"),
  jobId: JobId,
  /** The tenant's sandbox, by its platform-wide name (storage/layout.ts `sandboxKey`). */
  sandboxKey: SandboxKey,
  /**
   * When the API's KV write of the record had completed: KV's next write must wait a second from
   * here. 0 when the API wrote nothing to KV (as it does now; a message from an API that did
   * write at submit still spaces the finished record's copy).
   */
  kvWrittenAt: z.number().int(),
  request: JobRequest.optional(),
});
export type RunMessage = z.infer<typeof RunMessage>;

/** Copies finished records to KV once KV's one-write-per-second-per-key limit allows. */
export const CacheMessage = z.object({
  kind: z.literal("cache"),
  jobs: z
    .array(
      z.object({
        tenant: TenantId,
        jobId: JobId,
        kvWrittenAt: z.number().int(),
        /** The finished record itself when it fits; a finished record never changes. */
        record: JobRecord.optional(),
      }),
    )
    .min(1)
    .max(100),
});
export type CacheMessage = z.infer<typeof CacheMessage>;

export const QueueMessage = z.discriminatedUnion("kind", [RunMessage, CacheMessage]);
export type QueueMessage = z.infer<typeof QueueMessage>;
