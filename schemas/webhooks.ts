/**
 * Webhook endpoints and their deliveries, as the API takes and answers them. A signing secret
 * (`whsec_...`) is answered once, when the endpoint is created, and never again.
 */
import { z } from "@hono/zod-openapi";
import { EventType } from "./events";

export const WEBHOOK_ID_PATTERN = /^wh_[0-9A-HJKMNP-TV-Z]{26}$/;
export const DELIVERY_ID_PATTERN = /^dlv_[0-9A-HJKMNP-TV-Z]{26}$/;
/** Endpoints per tenant: each event fans out to every one of them. */
export const MAX_WEBHOOKS_PER_TENANT = 20;

export const WebhookId = z
  .string()
  .regex(WEBHOOK_ID_PATTERN, "Webhook IDs are wh_ followed by 26 characters, as POST /v1/webhooks returns");
export const DeliveryId = z.string().regex(DELIVERY_ID_PATTERN, "Delivery IDs are dlv_ followed by 26 characters");

const WebhookUrl = z.string().min(1).max(2048);
const Events = z.array(EventType).min(1, "events must name at least one event type").max(EventType.options.length);

export const CreateWebhookRequest = z
  .object({ url: WebhookUrl, events: Events, description: z.string().max(200).optional() })
  .strict()
  .openapi("CreateWebhookRequest");
export type CreateWebhookRequest = z.infer<typeof CreateWebhookRequest>;

export const UpdateWebhookRequest = z
  .object({
    url: WebhookUrl.optional(),
    events: Events.optional(),
    description: z.string().max(200).optional(),
    /** `true` turns a disabled endpoint back on (its failure streak starts afresh). */
    enabled: z.boolean().optional(),
  })
  .strict()
  .openapi("UpdateWebhookRequest");
export type UpdateWebhookRequest = z.infer<typeof UpdateWebhookRequest>;

export const WebhookView = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(EventType),
    description: z.string().nullable(),
    enabled: z.boolean(),
    /** Why it was disabled (failing for days, or the receiver answered 410 Gone); null while enabled. */
    disabledReason: z.string().nullable(),
    /** Since when every attempt has failed; null after a success. */
    failingSince: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Webhook");
export type WebhookView = z.infer<typeof WebhookView>;

export const CreatedWebhook = WebhookView.extend({
  /** The signing secret, shown this once: verify deliveries with it (Standard Webhooks). */
  secret: z.string(),
}).openapi("CreatedWebhook");
export type CreatedWebhook = z.infer<typeof CreatedWebhook>;

export const WebhookList = z.object({ webhooks: z.array(WebhookView) });
export type WebhookList = z.infer<typeof WebhookList>;

export const DeletedWebhook = z.object({ id: z.string(), deleted: z.boolean() });

export const DeliveryAttempt = z.object({
  attempt: z.number().int(),
  at: z.string(),
  /** The receiver's HTTP status; null when there was no answer (timeout, refused destination, network error). */
  responseCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number().int(),
});
export type DeliveryAttempt = z.infer<typeof DeliveryAttempt>;

export const DeliveryStatus = z.enum(["pending", "delivered", "failed", "cancelled"]);
export type DeliveryStatus = z.infer<typeof DeliveryStatus>;

export const DeliveryView = z
  .object({
    id: z.string(),
    webhookId: z.string(),
    /** The `webhook-id` header of every try: the receiver's key for discarding duplicates. */
    eventId: z.string(),
    eventType: EventType,
    status: DeliveryStatus,
    /** When the next try is due while pending; null otherwise. */
    nextAttemptAt: z.string().nullable(),
    createdAt: z.string(),
    attempts: z.array(DeliveryAttempt),
  })
  .openapi("WebhookDelivery");
export type DeliveryView = z.infer<typeof DeliveryView>;

export const DeliveryPage = z
  .object({ deliveries: z.array(DeliveryView), nextCursor: z.string().nullable() })
  .openapi("WebhookDeliveryPage");
export type DeliveryPage = z.infer<typeof DeliveryPage>;
