/**
 * `/v1/jobs` and `/v1/batches/{id}`: submit up to 100 jobs across sandboxes at once, as a
 * pipeline when they carry `name` and `needs`; follow the batch as a whole; cancel it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { BatchRequest, BatchView, batchStatus, type JobRecord } from "../schemas/job";
import { type BatchManifest, readBatch } from "../storage/batches";
import { JOB_ID_PATTERN } from "../storage/layout";
import { refuseExtractInJson } from "./archives";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";
import { idempotentSubmit } from "./idempotency";
import { MAX_WAIT_SECONDS } from "./jobService";
import { expandMatrix } from "./matrix";
import { ErrorBody, newRouter } from "./openapi";
import type { JobPresenter } from "./present";
import { planRerun, submittedEntries } from "./rerun";

const submitBatch = createRoute({
  method: "post",
  path: "/v1/jobs",
  summary: "Submit up to 100 jobs across sandboxes in one request; each sandbox runs its jobs in array order, after the jobs they need",
  request: { body: { required: true, content: { "application/json": { schema: BatchRequest } } } },
  responses: {
    202: {
      description: "Every job recorded and queued (one its coordinator could not take yet is handed over by the sweeper)",
      content: { "application/json": { schema: BatchView } },
    },
    400: {
      description: "A job in the batch is invalid, or its needs name an unknown job or form a cycle; none was submitted",
      content: { "application/json": { schema: ErrorBody } },
    },
    413: {
      description: "The request is over 32 MiB, or its matrix jobs' copies add up past that; none was submitted",
      content: { "application/json": { schema: ErrorBody } },
    },
  },
});

const BatchParams = z.object({
  batchId: z
    .string()
    .regex(JOB_ID_PATTERN, "Batch IDs are 26-character ULIDs as returned by POST /v1/jobs")
    .openapi({ param: { name: "batchId", in: "path" } }),
});

const getBatch = createRoute({
  method: "get",
  path: "/v1/batches/{batchId}",
  summary: "A batch's jobs and its overall status; with ?wait=N, wait up to N seconds for all of them to finish",
  request: {
    params: BatchParams,
    query: z.object({
      wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS, `wait is at most ${MAX_WAIT_SECONDS} seconds`).optional(),
    }),
  },
  responses: {
    200: { description: "The batch", content: { "application/json": { schema: BatchView } } },
    404: { description: "Unknown batch", content: { "application/json": { schema: ErrorBody } } },
  },
});

const cancelBatch = createRoute({
  method: "post",
  path: "/v1/batches/{batchId}/cancel",
  summary: "Cancel every job of the batch that has not finished",
  request: { params: BatchParams },
  responses: {
    200: { description: "The batch after the cancels", content: { "application/json": { schema: BatchView } } },
    404: { description: "Unknown batch", content: { "application/json": { schema: ErrorBody } } },
  },
});

const rerunBatch = createRoute({
  method: "post",
  path: "/v1/batches/{batchId}/rerun",
  summary: "Run a finished batch again as a new batch: with ?failed=true only the jobs that did not succeed, and what needs them",
  request: {
    params: BatchParams,
    query: z.object({ failed: z.enum(["true", "false"]).default("false").openapi({ description: "only what did not succeed" }) }),
  },
  responses: {
    202: { description: "The new batch", content: { "application/json": { schema: BatchView } } },
    404: {
      description: "Unknown batch, or one submitted before it could be run again",
      content: { "application/json": { schema: ErrorBody } },
    },
    409: {
      description: "The batch is still running, nothing of it failed, or its stored request cannot be read (REQUEST_UNREADABLE)",
      content: { "application/json": { schema: ErrorBody } },
    },
  },
});

interface SubmittedBatch {
  batchId: string;
  createdAt: string;
  records: JobRecord[];
}

async function present(presenter: JobPresenter, batch: SubmittedBatch): Promise<BatchView> {
  return {
    batchId: batch.batchId,
    status: batchStatus(batch.records),
    createdAt: batch.createdAt,
    jobs: await Promise.all(batch.records.map((record) => presenter.present(record))),
  };
}

/** The batch's manifest; 404 for an unknown batch or another tenant's. */
async function readManifest(c: { env: Env; var: ApiEnv["Variables"] }, batchId: string): Promise<BatchManifest> {
  const manifest = await readBatch(c.env.JOB_OUTPUT, c.var.tenant, batchId);
  if (!manifest) throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No batch ${batchId} (unknown, or past its retention)`);
  return manifest;
}

/**
 * The batch's jobs as they stand (with `waitMs`, once all have finished or that has passed): one
 * call to each of its sandboxes' coordinators, however many jobs it has.
 */
async function loadBatch(c: { env: Env; var: ApiEnv["Variables"] }, batchId: string, waitMs = 0): Promise<SubmittedBatch> {
  const manifest = await readManifest(c, batchId);
  const records = waitMs > 0 ? await c.var.jobs.waitForMany(manifest.jobs, waitMs) : await c.var.jobs.getMany(manifest.jobs);
  return { batchId, createdAt: manifest.createdAt, records };
}

export const batchesRouter = newRouter()
  .openapi(submitBatch, async (c) => {
    const body = c.req.valid("json");
    for (const entry of body.jobs) refuseExtractInJson(entry.job);
    const { result, replayed } = await idempotentSubmit(
      c,
      body,
      (seed) => c.var.jobs.submitBatch(expandMatrix(body.jobs), seed),
      (batch) => ({ jobIds: batch.records.map((record) => record.id), batchId: batch.batchId }),
      (receipt) => loadBatch(c, receipt.batchId ?? ""),
    );
    if (replayed) c.header("Idempotent-Replayed", "true");
    c.header("Location", `/v1/batches/${result.batchId}`);
    return c.json(await present(c.var.presenter, result), 202);
  })
  .openapi(getBatch, async (c) => {
    const { batchId } = c.req.valid("param");
    const { wait } = c.req.valid("query");
    return c.json(await present(c.var.presenter, await loadBatch(c, batchId, (wait ?? 0) * 1000)), 200);
  })
  .openapi(rerunBatch, async (c) => {
    const { batchId } = c.req.valid("param");
    const { failed } = c.req.valid("query");
    const manifest = await readManifest(c, batchId);
    const entries = await submittedEntries(c.env.JOB_OUTPUT, c.var.jobs.config.secretsKeys, c.var.tenant, batchId, manifest.jobs.length);
    const byId = new Map((await c.var.jobs.getMany(manifest.jobs)).map((record) => [record.id, record]));
    const records = manifest.jobs.flatMap(({ jobId }) => byId.get(jobId) ?? []);
    if (records.length !== manifest.jobs.length)
      throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `Some jobs of batch ${batchId} are gone (past their retention)`);
    const planned = planRerun(entries, records, failed === "true");
    const result = await c.var.jobs.submitBatch(planned);
    c.header("Location", `/v1/batches/${result.batchId}`);
    return c.json(await present(c.var.presenter, result), 202);
  })
  .openapi(cancelBatch, async (c) => {
    const { batchId } = c.req.valid("param");
    const manifest = await readManifest(c, batchId);
    await c.var.jobs.cancelMany(manifest.jobs);
    return c.json(await present(c.var.presenter, await loadBatch(c, batchId)), 200);
  });
