/** `POST /v1/jobs`: submit many jobs at once, across sandboxes, in order. */
import { createRoute } from "@hono/zod-openapi";
import { BatchRequest, BatchView } from "../schemas/job";
import { ErrorBody, newRouter } from "./openapi";
import { presentJob } from "./present";

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
  const { jobs } = c.req.valid("json");
  const records = await c.var.jobs.submitMany(jobs.map(({ sandboxId, job }) => ({ sandboxId, request: job })));
  const origin = new URL(c.req.url).origin;
  return c.json({ jobs: records.map((record) => presentJob(record, origin)) }, 202);
});
