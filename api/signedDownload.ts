/**
 * Lets a signed download URL (access/signedUrls.ts) stand in for an API key: on a job's
 * download routes, a request that carries a signature is checked here and served as the
 * signature's tenant; a changed path, tenant or expiry is a 403. Anything else goes on to
 * authenticate.ts.
 */
import type { MiddlewareHandler } from "hono";
import { verifySignedPath } from "../access/signedUrls";
import { readConfig } from "../config";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";

export const signedDownload: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const url = new URL(c.req.url);
  if (!url.searchParams.has("sig")) return next();
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    throw new ApiError(403, ErrorCode.INVALID_SIGNATURE, "A signed URL is for downloading (GET) only");
  }
  const check = await verifySignedPath(readConfig(c.env).signedUrls.keys, url.pathname, url.searchParams, Math.floor(Date.now() / 1000));
  if (!check.ok) {
    throw check.reason === "expired"
      ? new ApiError(403, ErrorCode.URL_EXPIRED, "This download URL has expired; fetch the job again for fresh URLs")
      : new ApiError(403, ErrorCode.INVALID_SIGNATURE, "This download URL's signature does not match (was it changed?)");
  }
  c.set("tenant", check.tenant);
  return next();
};
