/** `/v1/jobs/{jobId}`: poll a job (optionally long-poll), download its output and artifacts. */
import { createRoute, z } from "@hono/zod-openapi";
import { coordinatorFor } from "../coordinator/stubs";
import { isTerminal, type JobRecord, JobView } from "../schemas/job";
import { findArtifact, storedUnpacked } from "../storage/artifactPack";
import { JOB_ID_PATTERN, r2Keys, sandboxKey } from "../storage/layout";
import { serveArtifactArchive } from "./artifactArchive";
import { serveArtifact, serveObject } from "./downloads";
import { ApiError, ErrorCode } from "./errors";
import { MAX_WAIT_SECONDS } from "./jobService";
import { ErrorBody, newRouter } from "./openapi";
import { ARCHIVE_PATH_SUFFIX, UrlTtl } from "./present";

export const JobParams = z.object({
  jobId: z
    .string()
    .regex(JOB_ID_PATTERN, "Job IDs are 26-character ULIDs as returned by the submit call")
    .openapi({ param: { name: "jobId", in: "path" } }),
});

const getJob = createRoute({
  method: "get",
  path: "/v1/jobs/{jobId}",
  summary: "A job's status, result and download links; with ?wait=N, wait up to N seconds for it to finish",
  request: {
    params: JobParams,
    query: z.object({
      wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS, `wait is at most ${MAX_WAIT_SECONDS} seconds`).optional(),
      urlTtl: UrlTtl,
    }),
  },
  responses: {
    200: { description: "The job", content: { "application/json": { schema: JobView } } },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
  },
});

/** `what` reads after "its" and before "can be downloaded": "stdout", "artifacts". */
function assertFinished(record: JobRecord, what: string, ready = "once it has finished"): void {
  if (!isTerminal(record.status)) {
    throw new ApiError(
      409,
      ErrorCode.OUTPUT_NOT_READY,
      `Job ${record.id} is ${record.status}; its ${what} can be downloaded ${ready} (follow GET /v1/jobs/${record.id}/logs, or poll with ?wait=30)`,
    );
  }
}

export const jobsRouter = newRouter();

jobsRouter.openapi(getJob, async (c) => {
  const { jobId } = c.req.valid("param");
  const { wait, urlTtl } = c.req.valid("query");
  const record = wait ? await c.var.jobs.waitFor(jobId, wait * 1000) : await c.var.jobs.get(jobId);
  const presenter = urlTtl ? c.var.presenter.withTtl(urlTtl) : c.var.presenter;
  return c.json(await presenter.present(record), 200);
});

const cancelJob = createRoute({
  method: "post",
  path: "/v1/jobs/{jobId}/cancel",
  summary: "Cancel a job: a queued one never runs; a running one has its command ended (the job then fails with CANCELLED)",
  request: { params: JobParams },
  responses: {
    200: { description: "Cancelled: the job is failed with error CANCELLED", content: { "application/json": { schema: JobView } } },
    202: {
      description: "Cancelling: the running command is being ended; poll the job",
      content: { "application/json": { schema: JobView } },
    },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
    409: { description: "The job has already finished", content: { "application/json": { schema: ErrorBody } } },
  },
});

jobsRouter.openapi(cancelJob, async (c) => {
  const { jobId } = c.req.valid("param");
  const { record, outcome } = await c.var.jobs.cancel(jobId);
  const body = await c.var.presenter.present(record);
  return outcome === "cancelled" ? c.json(body, 200) : c.json(body, 202);
});

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, ErrorCode.INVALID_PATH, `Malformed percent-encoding in the artifact path: ${segment}`);
  }
}

export function parseJobId(raw: string): string {
  const jobId = JobParams.shape.jobId.safeParse(raw);
  if (!jobId.success) throw new ApiError(400, ErrorCode.INVALID_REQUEST, "Job IDs are 26-character ULIDs as returned by the submit call");
  return jobId.data;
}

// Downloads answer raw bytes, so they are plain routes, documented in the registry below.
for (const stream of ["stdout", "stderr"] as const) {
  jobsRouter.get(`/v1/jobs/:jobId/${stream}`, async (c) => {
    const jobId = parseJobId(c.req.param("jobId"));
    const record = await c.var.jobs.get(jobId);
    if (record.status === "running") {
      // What the command has written so far, live from its sandbox's coordinator.
      const coordinator = coordinatorFor(c.env.SANDBOX_COORDINATOR, sandboxKey(record.tenant, record.sandboxId));
      const soFar = await coordinator.outputSoFar(jobId, stream);
      if (soFar) return c.body(new Uint8Array(soFar), 200, { "content-type": "text/plain; charset=utf-8", "x-job-status": "running" });
    }
    // A running job's output so far came from its coordinator above.
    assertFinished(record, stream, record.status === "queued" ? "once it runs" : "once it has finished");
    const output = record[stream];
    if (!output) {
      const why =
        record.type === "file"
          ? `is a file job and has no ${stream}`
          : `has no stored ${stream}: it ended before its command's output could be read (${record.error?.code ?? record.status})`;
      throw new ApiError(404, ErrorCode.FILE_NOT_FOUND, `Job ${jobId} ${why}`);
    }
    if (output.size === 0) return c.body(null, 200, { "content-type": "text/plain; charset=utf-8", "content-length": "0" });
    return serveObject(c.env.JOB_OUTPUT, r2Keys.output(record.tenant, jobId, record.attempts, stream), c.req.raw, {
      filename: `${jobId}.${stream}.txt`,
      disposition: "inline",
    });
  });
  jobsRouter.openAPIRegistry.registerPath({
    method: "get",
    path: `/v1/jobs/{jobId}/${stream}`,
    summary: `The job's ${stream} (Range supported)`,
    request: { params: JobParams },
    responses: {
      200: { description: `${stream} bytes`, content: { "text/plain": { schema: z.string() } } },
      404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
      409: { description: "The job has not finished yet", content: { "application/json": { schema: ErrorBody } } },
    },
  });
}

jobsRouter.get("/v1/jobs/:jobId/artifacts/:path{.+}", async (c) => {
  const jobId = parseJobId(c.req.param("jobId"));
  // From the raw URL, each segment decoded once: hono's param is decoded already, and decoding
  // it again would turn a file named `%41.txt` into `A.txt`.
  const rawPath = new URL(c.req.url).pathname.slice(`/v1/jobs/${jobId}/artifacts/`.length);
  const path = rawPath.split("/").map(decodeSegment).join("/");
  const record = await c.var.jobs.get(jobId);
  // Artifacts are collected when the job ends: before that, none is missing yet.
  assertFinished(record, "artifacts");
  const artifact = await findArtifact(c.env.JOB_OUTPUT, record, path);
  if (!artifact) {
    const known = record.artifacts.map((candidate) => candidate.path).slice(0, 20);
    throw new ApiError(
      404,
      ErrorCode.FILE_NOT_FOUND,
      `Job ${jobId} has no artifact ${path}${known.length ? `; its first are: ${known.join(", ")} (GET /v1/jobs/${jobId}/artifacts lists all)` : ""}`,
    );
  }
  return serveArtifact(c.env.JOB_OUTPUT, record, artifact, c.req.raw, {
    filename: path.slice(path.lastIndexOf("/") + 1),
    disposition: "attachment",
  });
});

jobsRouter.openAPIRegistry.registerPath({
  method: "get",
  path: "/v1/jobs/{jobId}/artifacts/{path}",
  summary: "Download one artifact (path relative to the job's cwd; Range and If-None-Match supported)",
  request: { params: JobParams.extend({ path: z.string().openapi({ param: { name: "path", in: "path" }, example: "dist/app.tar.gz" }) }) },
  responses: {
    200: { description: "The file's bytes" },
    206: { description: "Part of the file" },
    404: { description: "No such job or artifact", content: { "application/json": { schema: ErrorBody } } },
    409: { description: "The job has not finished yet", content: { "application/json": { schema: ErrorBody } } },
  },
});

// `artifacts.tar.gz` is one path segment, so it never meets the `artifacts/{path}` route above.
jobsRouter.get(`/v1/jobs/:jobId/${ARCHIVE_PATH_SUFFIX}`, async (c) => {
  const jobId = parseJobId(c.req.param("jobId"));
  const record = await c.var.jobs.get(jobId);
  assertFinished(record, "artifact archive");
  if (storedUnpacked(record)) {
    throw new ApiError(
      404,
      ErrorCode.FILE_NOT_FOUND,
      `Job ${jobId}'s artifacts were stored in an earlier layout and are not served; run the job again`,
    );
  }
  return serveArtifactArchive(c.env.JOB_OUTPUT, record);
});

jobsRouter.openAPIRegistry.registerPath({
  method: "get",
  path: `/v1/jobs/{jobId}/${ARCHIVE_PATH_SUFFIX}`,
  summary:
    "Every artifact of a finished job as one gzip-compressed tar (paths relative to the job's cwd, file modes kept; " +
    "a job without artifacts gives an empty archive), streamed as it is built",
  request: { params: JobParams },
  responses: {
    200: {
      description: "The archive, saved as {jobId}-artifacts.tar.gz",
      content: { "application/gzip": { schema: z.string().openapi({ format: "binary" }) } },
    },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
    409: { description: "The job has not finished yet", content: { "application/json": { schema: ErrorBody } } },
  },
});
