/** `POST /v1/jobs`: submit many jobs at once, across sandboxes, in order. */
import { createRoute } from "@hono/zod-openapi";
import { BatchRequest, BatchView } from "../schemas/job";
import { idempotentSubmit } from "./idempotency";
import { ErrorBody, newRouter } from "./openapi";

const submitBatch = createRoute({
  method: "post",
  path: "/v1/jobs",
  summary: "Submit up to 100 jobs across sandboxes in one request; each sandbox runs its jobs in array order",
  request: { body: { required: true, content: { "application/json": { schema: BatchRequest } } } },
  responses: {
    202: {
      description: "Every job recorded; any that could not be queued says so (status failed, error QUEUE_UNAVAILABLE)",
      content: { "application/json": { schema: BatchView } },
    },
    400: { description: "A job in the batch is invalid; none was submitted", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const batchesRouter = newRouter().openapi(submitBatch, async (c) => {
  const body = c.req.valid("json");
  const { records, replayed } = await idempotentSubmit(c, body, () =>
    c.var.jobs.submitMany(body.jobs.map(({ sandboxId, job }) => ({ sandboxId, request: job }))),
  );
  if (replayed) c.header("Idempotent-Replayed", "true");
  return c.json({ jobs: await Promise.all(records.map((record) => c.var.presenter.present(record))) }, 202);
});
