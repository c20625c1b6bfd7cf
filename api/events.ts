/**
 * `GET /v1/events?since=<cursor>`: the tenant's events, the same ones its webhooks deliver, for
 * a receiver that missed one (or has no public URL). Kept for the job retention.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { tenantEventsFor } from "../events/tenantEvents";
import { EventCursor, EventPage } from "../schemas/events";
import { ErrorBody, newRouter } from "./openapi";

const listEvents = createRoute({
  method: "get",
  path: "/v1/events",
  summary: "Events after a cursor, oldest first (job.succeeded, job.failed, ..., batch.finished); pass nextCursor back as since",
  request: {
    query: z.object({
      since: EventCursor.optional().openapi({ description: "nextCursor of an earlier answer; omitted: from the oldest event kept" }),
      limit: z.coerce.number().int().min(1).max(100).default(50),
    }),
  },
  responses: {
    200: {
      description: "One page of events; nextCursor is where the next poll starts",
      content: { "application/json": { schema: EventPage } },
    },
    400: { description: "Invalid cursor or limit", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const eventsRouter = newRouter().openapi(listEvents, async (c) => {
  const { since, limit } = c.req.valid("query");
  return c.json(await tenantEventsFor(c.env.TENANT_EVENTS, c.var.tenant).events(Number(since ?? "0"), limit), 200);
});
