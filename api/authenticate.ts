/**
 * Who is calling: `Authorization: Bearer <API key>` (hono's bearerAuth) names the tenant every
 * route then serves. A local stack lets anonymous requests in as the tenant `local`, so the
 * quickstart and the original clients work as they are, unless REQUIRE_API_KEYS is set (as it is
 * deployed). A signed download URL stands in for a key on the one object it names (signedUrls.ts).
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { looksLikeApiKey, type StoredApiKey, StoredApiKey as StoredApiKeySchema } from "../access/apiKeys";
import { readConfig } from "../config";
import { LOCAL_TENANT } from "../schemas/ids";
import { sha256Hex } from "../storage/hex";
import { kvKeys } from "../storage/layout";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";

const CHALLENGE = { "www-authenticate": 'Bearer realm="artifact-sandbox"' };

/** Keys this isolate verified lately, by hash: a client's next request skips the KV read. */
const recentlyVerified = new Map<string, { key: StoredApiKey; until: number }>();
const RECENTLY_VERIFIED_MAX = 1000;

/**
 * The stored key a presented key stands for, or undefined (unknown, revoked, or malformed). A
 * key found is trusted for `cacheSeconds` in this isolate; beyond that, KV serves reads from its
 * own cache for up to 60 s. So a revoked key stops working within `cacheSeconds` locally and
 * within about a minute deployed.
 */
export async function verifyApiKey(kv: KVNamespace, candidate: string, cacheSeconds: number): Promise<StoredApiKey | undefined> {
  if (!(await looksLikeApiKey(candidate))) return undefined;
  const hash = await sha256Hex(candidate);
  const cached = recentlyVerified.get(hash);
  if (cached && cached.until > Date.now()) return cached.key;
  recentlyVerified.delete(hash);
  const found = await lookUp(kv, hash);
  if (found && cacheSeconds > 0) {
    if (recentlyVerified.size >= RECENTLY_VERIFIED_MAX) recentlyVerified.clear();
    recentlyVerified.set(hash, { key: found, until: Date.now() + cacheSeconds * 1000 });
  }
  return found;
}

async function lookUp(kv: KVNamespace, hash: string): Promise<StoredApiKey | undefined> {
  const raw = await kv.get(kvKeys.apiKey(hash));
  if (raw === null) return undefined;
  const stored = StoredApiKeySchema.safeParse(JSON.parse(raw));
  if (!stored.success) return undefined;
  // Found by its hash already; comparing again in constant time keeps the timing flat should the
  // store ever answer a near miss.
  const presented = new TextEncoder().encode(hash);
  const expected = new TextEncoder().encode(stored.data.hash);
  return presented.byteLength === expected.byteLength && crypto.subtle.timingSafeEqual(presented, expected) ? stored.data : undefined;
}

const requireBearerKey = bearerAuth<ApiEnv>({
  realm: "artifact-sandbox",
  verifyToken: async (token, c) => {
    const key = await verifyApiKey(c.env.LOOKUPS, token, readConfig(c.env).apiKeyCacheSeconds);
    if (key) c.set("tenant", key.tenant);
    return key !== undefined;
  },
  noAuthenticationHeader: {
    message: () => {
      throw new ApiError(
        401,
        ErrorCode.UNAUTHENTICATED,
        "Missing API key: send the header Authorization: Bearer <key>",
        undefined,
        CHALLENGE,
      );
    },
  },
  invalidAuthenticationHeader: {
    message: () => {
      throw new ApiError(
        400,
        ErrorCode.UNAUTHENTICATED,
        "Malformed Authorization header: send Authorization: Bearer <key> (keys start with as_live_)",
        undefined,
        CHALLENGE,
      );
    },
  },
  invalidToken: {
    message: () => {
      throw new ApiError(
        401,
        ErrorCode.UNAUTHENTICATED,
        "The API key is not valid (mistyped, or revoked); create one with `npm run keys -- create <tenant>`",
        undefined,
        CHALLENGE,
      );
    },
  },
});

/** Sets the `tenant` variable, or answers 401; a request a signed URL already let in passes. */
export const authenticate: MiddlewareHandler<ApiEnv> = async (c, next) => {
  if (c.get("tenant") !== undefined) return next();
  if (c.req.header("authorization") === undefined && !readConfig(c.env).requireApiKeys) {
    c.set("tenant", LOCAL_TENANT);
    return next();
  }
  return requireBearerKey(c, next);
};
