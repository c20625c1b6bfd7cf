/**
 * Messages on the job queue: the durable intake of a job whose hand-over to its coordinator at
 * submit failed. A message carries the request only when it is small, far below Queues' 128 KB
 * message limit; a larger one waits in R2.
 */
import { z } from "zod";
import { SandboxKey, TenantId } from "./ids";
import { JobRequest } from "./job";
import { DeliveryId, WebhookId } from "./webhooks";

/**
 * Requests up to this size travel inside their queue message and are kept in their coordinator's
 * table; larger ones wait in R2 (a SQLite value holds at most 2 MB).
 */
export const INLINE_REQUEST_MAX_BYTES = 64 * 1024;

const JobId = z.string().min(1).max(64);

export const RunMessage = z.object({
  kind: z.literal("run"),
  jobId: JobId,
  /** The tenant's sandbox, by its platform-wide name (storage/layout.ts `sandboxKey`). */
  sandboxKey: SandboxKey,
  request: JobRequest.optional(),
});
export type RunMessage = z.infer<typeof RunMessage>;

export const QueueMessage = RunMessage;
export type QueueMessage = RunMessage;

/**
 * One attempt at one webhook delivery (webhooks/), on its own queue: `attempt` is the try it
 * stands for, so a duplicate or a superseded message changes nothing.
 */
export const WebhookDeliveryMessage = z.object({
  kind: z.literal("webhook"),
  tenant: TenantId,
  /** The endpoint: its WebhookSender makes the try. */
  webhookId: WebhookId,
  deliveryId: DeliveryId,
  attempt: z.number().int().min(1),
});
export type WebhookDeliveryMessage = z.infer<typeof WebhookDeliveryMessage>;
