/** `/v1/sandboxes/{sandboxId}/jobs`: submit a job to a sandbox, list a sandbox's jobs. */
import { createRoute, z } from "@hono/zod-openapi";
import { JobPageView, JobRequest, JobStatus, JobView } from "../schemas/job";
import { JOB_ID_PATTERN } from "../storage/layout";
import { refuseExtractInJson } from "./archives";
import { idempotentSubmit } from "./idempotency";
import { ErrorBody, newRouter, SandboxParams } from "./openapi";
import { jobPath, UrlTtl } from "./present";

const submitJob = createRoute({
  method: "post",
  path: "/v1/sandboxes/{sandboxId}/jobs",
  summary: "Submit a job (run a command, or write, read or delete a file) to a sandbox",
  request: { params: SandboxParams, body: { required: true, content: { "application/json": { schema: JobRequest } } } },
  responses: {
    202: { description: "Accepted and queued; poll the Location", content: { "application/json": { schema: JobView } } },
    400: { description: "Invalid sandbox ID or job", content: { "application/json": { schema: ErrorBody } } },
    413: { description: "Body too large", content: { "application/json": { schema: ErrorBody } } },
  },
});

const listJobs = createRoute({
  method: "get",
  path: "/v1/sandboxes/{sandboxId}/jobs",
  summary: "List a sandbox's jobs, newest first",
  request: {
    params: SandboxParams,
    query: z.object({
      status: JobStatus.optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().regex(JOB_ID_PATTERN, "cursor must be the nextCursor of a previous page").optional(),
      urlTtl: UrlTtl,
    }),
  },
  responses: {
    200: { description: "One page of jobs", content: { "application/json": { schema: JobPageView } } },
    400: { description: "Invalid query", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const sandboxJobsRouter = newRouter()
  .openapi(submitJob, async (c) => {
    const { sandboxId } = c.req.valid("param");
    const request = c.req.valid("json");
    refuseExtractInJson(request);
    const { result: record, replayed } = await idempotentSubmit(
      c,
      request,
      (seed) => c.var.jobs.submit(sandboxId, request, { seed }),
      (submitted) => ({ jobIds: [submitted.id] }),
      ({ jobIds: [jobId] }) => c.var.jobs.get(jobId ?? ""),
    );
    if (replayed) c.header("Idempotent-Replayed", "true");
    c.header("Location", jobPath(record.id));
    c.header("Content-Location", c.var.presenter.jobUrl(record.id));
    return c.json(await c.var.presenter.present(record), 202);
  })
  .openapi(listJobs, async (c) => {
    const { sandboxId } = c.req.valid("param");
    const query = c.req.valid("query");
    const page = await c.var.jobs.list(sandboxId, query);
    const presenter = query.urlTtl ? c.var.presenter.withTtl(query.urlTtl) : c.var.presenter;
    return c.json({ jobs: await Promise.all(page.jobs.map((record) => presenter.present(record))), nextCursor: page.nextCursor }, 200);
  });
