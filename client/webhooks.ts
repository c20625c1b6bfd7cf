/**
 * The typed client's webhook, event and metric calls, apart from the job client: each answer
 * parsed with the API's own schemas (schemas/webhooks.ts, schemas/events.ts).
 */
import type { z } from "zod";
import { type EventPage, EventPage as EventPageSchema } from "../schemas/events";
import {
  type CreatedWebhook,
  CreatedWebhook as CreatedWebhookSchema,
  type CreateWebhookRequest,
  DeletedWebhook,
  type DeliveryPage,
  DeliveryPage as DeliveryPageSchema,
  type DeliveryView,
  DeliveryView as DeliveryViewSchema,
  type UpdateWebhookRequest,
  WebhookList,
  type WebhookView,
  WebhookView as WebhookViewSchema,
} from "../schemas/webhooks";
import { type ClientOptions, Http } from "./http";

export type { CreatedWebhook, DeliveryView, EventPage, WebhookView };

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

export class WebhooksClient {
  private readonly http: Http;

  constructor(options: ClientOptions) {
    this.http = new Http(options);
  }

  /** Registers an endpoint; the answer's `secret` is shown this once. */
  create(input: CreateWebhookRequest): Promise<CreatedWebhook> {
    return this.http.json(CreatedWebhookSchema, "/v1/webhooks", json("POST", input));
  }

  async list(): Promise<WebhookView[]> {
    return (await this.http.json(WebhookList, "/v1/webhooks")).webhooks;
  }

  get(webhookId: string): Promise<WebhookView> {
    return this.http.json(WebhookViewSchema, `/v1/webhooks/${encodeURIComponent(webhookId)}`);
  }

  update(webhookId: string, patch: UpdateWebhookRequest): Promise<WebhookView> {
    return this.http.json(WebhookViewSchema, `/v1/webhooks/${encodeURIComponent(webhookId)}`, json("PATCH", patch));
  }

  remove(webhookId: string): Promise<z.infer<typeof DeletedWebhook>> {
    return this.http.json(DeletedWebhook, `/v1/webhooks/${encodeURIComponent(webhookId)}`, { method: "DELETE" });
  }

  deliveries(webhookId: string, options: { limit?: number; cursor?: string } = {}): Promise<DeliveryPage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    const search = query.size > 0 ? `?${query}` : "";
    return this.http.json(DeliveryPageSchema, `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries${search}`);
  }

  /** Sends a finished delivery again, under the same `webhook-id`. */
  resend(webhookId: string, deliveryId: string): Promise<DeliveryView> {
    const path = `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries/${encodeURIComponent(deliveryId)}/resend`;
    return this.http.json(DeliveryViewSchema, path, { method: "POST" });
  }

  /** Events after `since` (a nextCursor; omitted, from the oldest kept). */
  events(options: { since?: string; limit?: number } = {}): Promise<EventPage> {
    const query = new URLSearchParams();
    if (options.since) query.set("since", options.since);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    const search = query.size > 0 ? `?${query}` : "";
    return this.http.json(EventPageSchema, `/v1/events${search}`);
  }
}
