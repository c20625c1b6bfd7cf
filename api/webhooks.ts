/**
 * `/v1/webhooks`: a tenant's webhook endpoints (create, list, get, update, delete), their
 * deliveries, and sending one again. The URL is checked when registered (webhooks/destination.ts)
 * and again at every try; the signing secret is answered once, by the create.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { tenantEventsFor } from "../events/tenantEvents";
import {
  CreatedWebhook,
  CreateWebhookRequest,
  DeletedWebhook,
  DeliveryId,
  DeliveryPage,
  DeliveryView,
  MAX_WEBHOOKS_PER_TENANT,
  UpdateWebhookRequest,
  WebhookId,
  WebhookList,
  WebhookView,
} from "../schemas/webhooks";
import { checkDestination } from "../webhooks/destination";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";
import { ErrorBody, newRouter } from "./openapi";

const WebhookParams = z.object({ webhookId: WebhookId.openapi({ param: { name: "webhookId", in: "path" } }) });
const DeliveryParams = WebhookParams.extend({ deliveryId: DeliveryId.openapi({ param: { name: "deliveryId", in: "path" } }) });
const errors = {
  400: { description: "Invalid request, or a URL webhooks may not go to", content: { "application/json": { schema: ErrorBody } } },
  404: { description: "Unknown webhook (or another tenant's)", content: { "application/json": { schema: ErrorBody } } },
};

const createWebhook = createRoute({
  method: "post",
  path: "/v1/webhooks",
  summary: "Register a webhook endpoint for job and batch events; the answer holds its signing secret, shown this once",
  request: { body: { required: true, content: { "application/json": { schema: CreateWebhookRequest } } } },
  responses: {
    201: { description: "Registered", content: { "application/json": { schema: CreatedWebhook } } },
    400: errors[400],
    409: {
      description: `The tenant has ${MAX_WEBHOOKS_PER_TENANT} endpoints already`,
      content: { "application/json": { schema: ErrorBody } },
    },
  },
});

const listWebhooks = createRoute({
  method: "get",
  path: "/v1/webhooks",
  summary: "The tenant's webhook endpoints (without their secrets)",
  responses: { 200: { description: "Every endpoint", content: { "application/json": { schema: WebhookList } } } },
});

const getWebhook = createRoute({
  method: "get",
  path: "/v1/webhooks/{webhookId}",
  summary: "One webhook endpoint: whether it is enabled, and why not",
  request: { params: WebhookParams },
  responses: { 200: { description: "The endpoint", content: { "application/json": { schema: WebhookView } } }, ...errors },
});

const updateWebhook = createRoute({
  method: "patch",
  path: "/v1/webhooks/{webhookId}",
  summary: "Change an endpoint's URL, events or description, or turn it off or back on",
  request: { params: WebhookParams, body: { required: true, content: { "application/json": { schema: UpdateWebhookRequest } } } },
  responses: { 200: { description: "The endpoint as changed", content: { "application/json": { schema: WebhookView } } }, ...errors },
});

const deleteWebhook = createRoute({
  method: "delete",
  path: "/v1/webhooks/{webhookId}",
  summary: "Delete an endpoint and its delivery log (idempotent)",
  request: { params: WebhookParams },
  responses: {
    200: { description: "Deleted, or there was nothing to delete", content: { "application/json": { schema: DeletedWebhook } } },
  },
});

const listDeliveries = createRoute({
  method: "get",
  path: "/v1/webhooks/{webhookId}/deliveries",
  summary: "An endpoint's deliveries, newest first, each with its attempts (time, response code, error)",
  request: {
    params: WebhookParams,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: DeliveryId.optional(),
    }),
  },
  responses: { 200: { description: "One page of deliveries", content: { "application/json": { schema: DeliveryPage } } }, ...errors },
});

const resendDelivery = createRoute({
  method: "post",
  path: "/v1/webhooks/{webhookId}/deliveries/{deliveryId}/resend",
  summary: "Send a delivery again: the same event and webhook-id, on a fresh retry schedule",
  request: { params: DeliveryParams },
  responses: {
    202: { description: "Queued", content: { "application/json": { schema: DeliveryView } } },
    ...errors,
    409: { description: "Still being tried, or the endpoint is disabled", content: { "application/json": { schema: ErrorBody } } },
  },
});

function events(c: { env: Env; var: ApiEnv["Variables"] }) {
  return tenantEventsFor(c.env.TENANT_EVENTS, c.var.tenant);
}

function checkedUrl(c: { env: Env; var: ApiEnv["Variables"] }, url: string): string {
  const destination = checkDestination(url, c.var.jobs.config.webhooks.allowPrivateDestinations);
  if (!destination.ok) throw new ApiError(400, ErrorCode.WEBHOOK_URL_REFUSED, destination.reason);
  return destination.url.toString();
}

function notFound(webhookId: string): ApiError {
  return new ApiError(404, ErrorCode.WEBHOOK_NOT_FOUND, `No webhook ${webhookId}`);
}

export const webhooksRouter = newRouter()
  .openapi(createWebhook, async (c) => {
    const body = c.req.valid("json");
    const created = await events(c).createWebhook(c.var.tenant, { ...body, url: checkedUrl(c, body.url) });
    if (created === "limit") {
      throw new ApiError(
        409,
        ErrorCode.WEBHOOK_LIMIT_REACHED,
        `At most ${MAX_WEBHOOKS_PER_TENANT} webhook endpoints per tenant; delete one first`,
      );
    }
    c.header("Location", `/v1/webhooks/${created.id}`);
    return c.json(created, 201);
  })
  .openapi(listWebhooks, async (c) => c.json({ webhooks: await events(c).webhooks() }, 200))
  .openapi(getWebhook, async (c) => {
    const { webhookId } = c.req.valid("param");
    const webhook = await events(c).webhook(webhookId);
    if (!webhook) throw notFound(webhookId);
    return c.json(webhook, 200);
  })
  .openapi(updateWebhook, async (c) => {
    const { webhookId } = c.req.valid("param");
    const patch = c.req.valid("json");
    const updated = await events(c).updateWebhook(webhookId, patch.url === undefined ? patch : { ...patch, url: checkedUrl(c, patch.url) });
    if (!updated) throw notFound(webhookId);
    return c.json(updated, 200);
  })
  .openapi(deleteWebhook, async (c) => {
    const { webhookId } = c.req.valid("param");
    return c.json({ id: webhookId, deleted: await events(c).deleteWebhook(webhookId) }, 200);
  })
  .openapi(listDeliveries, async (c) => {
    const { webhookId } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const page = await events(c).webhookDeliveries(webhookId, limit, cursor);
    if (!page) throw notFound(webhookId);
    return c.json(page, 200);
  })
  .openapi(resendDelivery, async (c) => {
    const { webhookId, deliveryId } = c.req.valid("param");
    const outcome = await events(c).resendDelivery(c.var.tenant, webhookId, deliveryId);
    if (outcome === "not-found") throw new ApiError(404, ErrorCode.WEBHOOK_NOT_FOUND, `No delivery ${deliveryId} of webhook ${webhookId}`);
    if (outcome === "pending") throw new ApiError(409, ErrorCode.DELIVERY_PENDING, `Delivery ${deliveryId} is still being tried`);
    if (outcome === "disabled") {
      throw new ApiError(
        409,
        ErrorCode.WEBHOOK_DISABLED,
        `Webhook ${webhookId} is disabled; turn it on with PATCH {"enabled": true} first`,
      );
    }
    return c.json(outcome, 202);
  });
