/**
 * Download URLs that work without an API key until they expire. By default the Worker signs
 * them: HMAC-SHA256 over the method, the tenant, the path and the expiry, with the key ID in the
 * URL so the secret can be rotated (every configured key verifies; the first signs). When R2 S3
 * credentials are configured, URLs of stored objects are R2 presigned URLs instead, so downloads
 * go straight to the bucket and never pass through the Worker.
 */
import { AwsClient } from "aws4fetch";

export interface SigningKey {
  id: string;
  secret: string;
}

export interface R2Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  bucket: string;
}

/** The query parameters a Worker-signed URL carries. */
export const SIGNATURE_PARAMS = ["tenant", "expires", "kid", "sig"] as const;

function base64Url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

async function hmac(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return base64Url(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
}

function signedMessage(tenant: string, path: string, expires: number): string {
  return ["GET", tenant, path, String(expires)].join("\n");
}

/** `path` (as sent, percent-encoded) signed for `tenant` until `expires` (Unix seconds): the query string to append. */
export async function signPath(key: SigningKey, tenant: string, path: string, expires: number): Promise<string> {
  const sig = await hmac(key.secret, signedMessage(tenant, path, expires));
  return new URLSearchParams({ tenant, expires: String(expires), kid: key.id, sig }).toString();
}

export type SignatureCheck = { ok: true; tenant: string } | { ok: false; reason: "invalid" | "expired" };

/** Checks a Worker-signed URL: its signature first (a changed expiry fails it), then its expiry. */
export async function verifySignedPath(
  keys: SigningKey[],
  path: string,
  query: URLSearchParams,
  nowSeconds: number,
): Promise<SignatureCheck> {
  const tenant = query.get("tenant");
  const expires = Number(query.get("expires"));
  const key = keys.find((candidate) => candidate.id === query.get("kid"));
  const sig = query.get("sig");
  if (!tenant || !Number.isSafeInteger(expires) || !key || !sig) return { ok: false, reason: "invalid" };
  const expected = new TextEncoder().encode(await hmac(key.secret, signedMessage(tenant, path, expires)));
  const presented = new TextEncoder().encode(sig);
  const matches = expected.byteLength === presented.byteLength && crypto.subtle.timingSafeEqual(expected, presented);
  if (!matches) return { ok: false, reason: "invalid" };
  if (expires < nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true, tenant };
}

/** An R2 presigned GET for an object key, valid `ttlSeconds`, saved under `filename` by browsers and `curl -OJ`. */
export async function presignR2Get(
  credentials: R2Credentials,
  objectKey: string,
  ttlSeconds: number,
  contentDisposition: string,
): Promise<string> {
  const client = new AwsClient({
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    service: "s3",
    region: "auto",
  });
  const url = new URL(
    `https://${credentials.accountId}.r2.cloudflarestorage.com/${credentials.bucket}/${objectKey.split("/").map(encodeURIComponent).join("/")}`,
  );
  url.searchParams.set("X-Amz-Expires", String(ttlSeconds));
  url.searchParams.set("response-content-disposition", contentDisposition);
  const signed = await client.sign(new Request(url, { method: "GET" }), { aws: { signQuery: true } });
  return signed.url;
}
