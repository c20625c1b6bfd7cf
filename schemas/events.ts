/**
 * Events: what a tenant's webhooks deliver and `GET /v1/events` lists, one per finished job and
 * one per finished batch. Their bodies are the job record, or a batch summary: never env values,
 * stdin, file content or signed URLs.
 */
import { z } from "@hono/zod-openapi";
import { BatchStatus, JobError, type JobRecord, JobStatus, PublicJobRecord } from "./job";

export const EventType = z.enum(["job.succeeded", "job.failed", "job.timed_out", "job.cancelled", "job.skipped", "batch.finished"]);
export type EventType = z.infer<typeof EventType>;
export const EVENT_TYPES = EventType.options;

/** The job's terminal state as an event: a cancel is stored as `failed` with CANCELLED, and is its own event. */
export function jobEventType(record: Pick<JobRecord, "status" | "error">): EventType | undefined {
  if (record.status === "failed") return record.error?.code === "CANCELLED" ? "job.cancelled" : "job.failed";
  if (record.status === "succeeded") return "job.succeeded";
  if (record.status === "timed_out") return "job.timed_out";
  if (record.status === "skipped") return "job.skipped";
  return undefined;
}

/** A job as an event carries it: the stored record less its internals (its runner's lease, live-log bookkeeping). */
export const JobEventData = PublicJobRecord.openapi("JobEventData");
export type JobEventData = z.infer<typeof JobEventData>;

export const BatchEventData = z
  .object({
    batchId: z.string(),
    status: BatchStatus,
    createdAt: z.string(),
    finishedAt: z.string(),
    /** Jobs by status, less the allowed failures, which are counted apart. */
    counts: z.record(z.string(), z.number().int()),
    /** Jobs that failed or timed out with `allowFailure`: neither a failure of the batch nor in `counts`. */
    allowedFailures: z.number().int().default(0),
    jobs: z.array(
      z.object({
        id: z.string(),
        name: z.string().nullable(),
        sandboxId: z.string(),
        status: JobStatus,
        allowFailure: z.boolean().default(false),
        exitCode: z.number().int().nullable(),
        error: JobError.nullable(),
        durationMs: z.number().int().nullable(),
      }),
    ),
  })
  .openapi("BatchEventData");
export type BatchEventData = z.infer<typeof BatchEventData>;

/** The body of a webhook delivery and an entry of `GET /v1/events` (Standard Webhooks' `type`, `timestamp`, `data`). */
export const EventView = z
  .object({
    id: z.string(),
    type: EventType,
    timestamp: z.string(),
    data: z.union([JobEventData, BatchEventData]),
  })
  .openapi("Event");
export type EventView = z.infer<typeof EventView>;

/** Cursors are opaque to clients; here they are the event log's sequence numbers. */
export const EventCursor = z.string().regex(/^\d{1,15}$/, "cursor is a nextCursor from an earlier answer");

export const EventPage = z.object({ events: z.array(EventView), nextCursor: z.string() }).openapi("EventPage");
export type EventPage = z.infer<typeof EventPage>;
