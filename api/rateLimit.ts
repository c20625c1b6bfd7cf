/**
 * Per-tenant request rate limit, with the Workers rate limiting binding (its limit and period are
 * in wrangler.jsonc): over it, 429 with Retry-After. Anonymous requests to a local stack (tenant
 * `local` without REQUIRE_API_KEYS) are not limited: that is one developer's own machine.
 */
import type { MiddlewareHandler } from "hono";
import { readConfig } from "../config";
import { LOCAL_TENANT } from "../schemas/ids";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";

/** The binding's period, in seconds (wrangler.jsonc `ratelimits`): a refused client can retry within it. */
const RATE_LIMIT_PERIOD_SECONDS = 10;

export const rateLimit: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const tenant = c.var.tenant;
  if (tenant === undefined || (tenant === LOCAL_TENANT && !readConfig(c.env).requireApiKeys)) return next();
  const { success } = await c.env.TENANT_RATE_LIMIT.limit({ key: tenant });
  if (!success) {
    throw new ApiError(
      429,
      ErrorCode.RATE_LIMITED,
      `Too many requests for tenant ${tenant}; slow down and retry after ${RATE_LIMIT_PERIOD_SECONDS} seconds`,
      undefined,
      { "retry-after": String(RATE_LIMIT_PERIOD_SECONDS) },
    );
  }
  return next();
};
