/**
 * `GET /v1/jobs/{jobId}/artifacts`: every artifact of a job, a page of its index (1,000 entries,
 * in path order) at a time, each with its download URL. The job record lists only the first 200.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ArtifactPageView } from "../schemas/job";
import { indexPageCount, readIndexPage } from "../storage/artifactPack";
import { ApiError, ErrorCode } from "./errors";
import { JobParams } from "./jobs";
import { ErrorBody, newRouter } from "./openapi";
import { UrlTtl } from "./present";

const listArtifacts = createRoute({
  method: "get",
  path: "/v1/jobs/{jobId}/artifacts",
  summary: "Every artifact of a job, 1,000 a page in path order, with download URLs (the job record lists the first 200)",
  request: {
    params: JobParams,
    query: z.object({
      cursor: z
        .string()
        .regex(/^\d{1,6}$/, "cursor is the nextCursor of the page before")
        .optional(),
      urlTtl: UrlTtl,
    }),
  },
  responses: {
    200: { description: "A page of artifacts", content: { "application/json": { schema: ArtifactPageView } } },
    400: { description: "A cursor this job's listing does not have", content: { "application/json": { schema: ErrorBody } } },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const artifactListRouter = newRouter();

artifactListRouter.openapi(listArtifacts, async (c) => {
  const { jobId } = c.req.valid("param");
  const { cursor, urlTtl } = c.req.valid("query");
  const record = await c.var.jobs.get(jobId);
  const pages = indexPageCount(record);
  const page = cursor === undefined ? 0 : Number(cursor);
  if (page > 0 && page >= pages) {
    throw new ApiError(400, ErrorCode.INVALID_REQUEST, `Job ${jobId}'s artifacts have ${pages} pages; cursor ${cursor} is past the last`);
  }
  const entries = page < pages ? await readIndexPage(c.env.JOB_OUTPUT, record, page) : [];
  const presenter = urlTtl ? c.var.presenter.withTtl(urlTtl) : c.var.presenter;
  const { artifacts, urlsExpireAt } = await presenter.artifactsWithUrls(record, entries);
  return c.json(
    {
      artifacts,
      files: record.artifactIndex?.files ?? 0,
      nextCursor: page + 1 < pages ? String(page + 1) : null,
      urlsExpireAt,
    },
    200,
  );
});
