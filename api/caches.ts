/** `/v1/caches`: the tenant's cache entries (shared by all its sandboxes), listed and deleted. */
import { createRoute, z } from "@hono/zod-openapi";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { CacheKey, CacheList, DeletedCaches } from "../schemas/cache";
import { deleteCacheObjects } from "../storage/cacheObjects";
import { ApiError, ErrorCode } from "./errors";
import { ErrorBody, newRouter } from "./openapi";

const listCaches = createRoute({
  method: "get",
  path: "/v1/caches",
  summary: "The tenant's cache entries, their sizes and last use, and the byte limit past which the least recently used are evicted",
  responses: { 200: { description: "Every cache entry", content: { "application/json": { schema: CacheList } } } },
});

const deleteCaches = createRoute({
  method: "delete",
  path: "/v1/caches",
  summary: "Delete the cache entry named by ?key=, or every entry whose key starts with ?prefix= (an empty prefix: all of them)",
  request: { query: z.object({ key: CacheKey.optional(), prefix: z.string().max(512).optional() }) },
  responses: {
    200: { description: "How many entries were deleted", content: { "application/json": { schema: DeletedCaches } } },
    400: { description: "Neither key nor prefix, or both", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const cachesRouter = newRouter()
  .openapi(listCaches, async (c) => {
    const { entries, totalBytes } = await tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant).listCaches();
    const caches = entries.map(({ key, sizeBytes, createdAt, lastUsedAt }) => ({ key, sizeBytes, createdAt, lastUsedAt }));
    return c.json({ caches, totalBytes, maxBytes: c.var.jobs.config.cacheMaxBytes }, 200);
  })
  .openapi(deleteCaches, async (c) => {
    const { key, prefix } = c.req.valid("query");
    if ((key === undefined) === (prefix === undefined)) {
      throw new ApiError(
        400,
        ErrorCode.INVALID_REQUEST,
        "Name the entries to delete with ?key= or with ?prefix= (?prefix= alone deletes all)",
      );
    }
    const directory = tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant);
    const objects = await directory.deleteCaches(key !== undefined ? { key } : { prefix: prefix ?? "" });
    await deleteCacheObjects(c.env.JOB_OUTPUT, objects);
    return c.json({ deleted: objects.length }, 200);
  });
