/**
 * API keys: `as_live_` then 192 random bits and a checksum, all hex. Only a key's SHA-256 is
 * stored (a fast hash suits a random secret); a lookup finds the key by that hash and compares
 * it in constant time. The checksum lets a leaked key be recognised, and a mistyped one be
 * refused without a storage read. Shared by the Worker (authentication) and `npm run keys`.
 */
import { ulid } from "ulid";
import { z } from "zod";
import { TenantId } from "../schemas/ids";
import { hex, sha256Hex } from "../storage/hex";

export const API_KEY_PREFIX = "as_live_";
const RANDOM_BYTES = 24;
const CHECKSUM_HEX = 8;
const API_KEY_PATTERN = new RegExp(`^${API_KEY_PREFIX}[0-9a-f]{${RANDOM_BYTES * 2 + CHECKSUM_HEX}}$`);

/** What is stored of a key, under its hash and under its ID: never the key itself. */
export const StoredApiKey = z.object({
  keyId: z.string(),
  tenant: TenantId,
  name: z.string(),
  createdAt: z.string(),
  /** SHA-256 of the whole key, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** The key's first characters, to tell keys apart in a listing. */
  hint: z.string(),
});
export type StoredApiKey = z.infer<typeof StoredApiKey>;

async function checksum(body: string): Promise<string> {
  return (await sha256Hex(`${API_KEY_PREFIX}${body}`)).slice(0, CHECKSUM_HEX);
}

/** A new key for a tenant, and what to store of it. The key is shown once and never kept. */
export async function newApiKey(tenant: string, name: string): Promise<{ key: string; stored: StoredApiKey }> {
  const body = hex(crypto.getRandomValues(new Uint8Array(RANDOM_BYTES)));
  const key = `${API_KEY_PREFIX}${body}${await checksum(body)}`;
  const stored: StoredApiKey = {
    keyId: `key_${ulid().toLowerCase()}`,
    tenant: TenantId.parse(tenant),
    name,
    createdAt: new Date().toISOString(),
    hash: await sha256Hex(key),
    hint: key.slice(0, API_KEY_PREFIX.length + 6),
  };
  return { key, stored };
}

/** Whether a string has a key's shape and a valid checksum (no storage read). */
export async function looksLikeApiKey(candidate: string): Promise<boolean> {
  if (!API_KEY_PATTERN.test(candidate)) return false;
  const body = candidate.slice(API_KEY_PREFIX.length, -CHECKSUM_HEX);
  return (await checksum(body)) === candidate.slice(-CHECKSUM_HEX);
}
