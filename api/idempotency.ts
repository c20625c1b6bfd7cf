/**
 * `Idempotency-Key` on the submit routes (the IETF httpapi draft's semantics, Stripe's 24 hours):
 * the same key with the same body answers with the job(s) it created the first time, never a
 * second run; with a different body 422; while the first request is still being accepted 409.
 * Keys are per tenant and claimed in the tenant's directory, a Durable Object, so two identical
 * requests at once create one job. The job IDs come from the key's seed, so a retry of a request
 * that failed or died after handing some jobs over hands over the same jobs, which their
 * coordinators ignore, never second copies.
 */
import type { Context } from "hono";
import { z } from "zod";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { sha256Hex } from "../storage/hex";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";
import { IdSeed } from "./jobIds";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** What a completed request left behind, enough to answer its repeats. */
export const Receipt = z.object({ jobIds: z.array(z.string()), batchId: z.string().optional() });
export type Receipt = z.infer<typeof Receipt>;

function fingerprint(method: string, path: string, body: unknown): Promise<string> {
  return sha256Hex(`${method} ${path}
${JSON.stringify(body)}`);
}

/**
 * Runs `submit` once per idempotency key (when the request has one). A repeat gets `replay` of
 * the first one's receipt (the same jobs as they stand now) and `replayed` set.
 */
export async function idempotentSubmit<T>(
  c: Context<ApiEnv>,
  body: unknown,
  submit: (seed: IdSeed | undefined) => Promise<T>,
  receiptOf: (result: T) => Receipt,
  replay: (receipt: Receipt) => Promise<T>,
): Promise<{ result: T; replayed: boolean }> {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return { result: await submit(undefined), replayed: false };
  if (!KEY_PATTERN.test(key)) {
    throw new ApiError(400, ErrorCode.INVALID_REQUEST, "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice)");
  }
  const directory = tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant);
  const claim = await directory.claimIdempotencyKey(c.var.tenant, key, await fingerprint(c.req.method, c.req.path, body));
  if (claim.state === "mismatch") {
    throw new ApiError(
      422,
      ErrorCode.IDEMPOTENCY_KEY_REUSED,
      "This Idempotency-Key was used with a different request; use a new key for a new request",
    );
  }
  if (claim.state === "in-progress") {
    throw new ApiError(
      409,
      ErrorCode.IDEMPOTENCY_KEY_IN_USE,
      "A request with this Idempotency-Key is still being accepted; retry in a moment",
      undefined,
      {
        "retry-after": "1",
      },
    );
  }
  if (claim.state === "replay") return { result: await replay(Receipt.parse(JSON.parse(claim.response))), replayed: true };
  let result: T;
  try {
    result = await submit(IdSeed.parse(claim.seed));
  } catch (error) {
    // The key may be used again at once; a retry makes the same job IDs (its seed is kept), so
    // a job this request handed over before it failed is not created twice.
    await directory.releaseIdempotencyKey(key, claim.claim).catch(() => undefined);
    throw error;
  }
  // The jobs exist: a failure to record that must not free the key for a second run. (Left
  // pending, the key answers 409 until its pending window passes.)
  await directory
    .completeIdempotencyKey(key, claim.claim, JSON.stringify(receiptOf(result)))
    .catch((error: unknown) => console.warn("could not record an idempotent submit's result", error));
  return { result, replayed: false };
}
