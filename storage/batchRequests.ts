/**
 * A batch's jobs as submitted (after matrix expansion), written once beside its manifest so that
 * `POST /v1/batches/{id}/rerun` can run them again, until the bucket's lifecycle rule removes it
 * with the batch (RETENTION_DAYS). What the jobs carry that a record never shows (env values,
 * stdin, file content) is needed for a rerun, so the whole request is sealed with the secrets key
 * (AES-256-GCM, bound to the tenant and the batch): nothing of it is readable in the bucket.
 * Without a secrets key, a request that carries such values is not kept, and a rerun says why.
 * Secrets are named by jobs, never held here: a rerun reads their current values.
 */
import { z } from "zod";
import { type CipherKey, openSecret, sealSecret } from "../access/secretCipher";
import { BatchEntry } from "../schemas/job";
import { r2Keys } from "./layout";

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const StoredBatchRequest = z.union([
  z.object({ sealed: z.object({ keyId: z.string(), iv: Base64, ciphertext: Base64 }) }),
  /** Nothing in it to hide (written without a secrets key). */
  z.object({ jobs: z.array(BatchEntry) }),
  /** Not kept: it carried values that are stored only sealed, and no secrets key was configured. */
  z.object({ withheld: z.literal(true) }),
]);
const Jobs = z.object({ jobs: z.array(BatchEntry) });

export type StoredRequest = { jobs: BatchEntry[] } | { unreadable: "withheld" | "key-gone" } | undefined;

/** What a rerun needs from the batch's jobs but a record does not show. */
function carriesValues(jobs: BatchEntry[]): boolean {
  return jobs.some(({ job }) => (job.type === "run" ? Object.keys(job.env).length > 0 || job.stdin !== undefined : job.op === "write"));
}

/** The associated data of a sealed request: it opens only as this tenant's request of this batch. */
const sealedName = (batchId: string) => `batch-request/${batchId}`;

export async function saveBatchRequest(
  bucket: R2Bucket,
  tenant: string,
  batchId: string,
  jobs: BatchEntry[],
  keys: CipherKey[],
): Promise<void> {
  let stored: z.infer<typeof StoredBatchRequest>;
  if (keys.length > 0) {
    const sealed = await sealSecret(keys, tenant, sealedName(batchId), JSON.stringify({ jobs }));
    stored = { sealed: { keyId: sealed.keyId, iv: toBase64(sealed.iv), ciphertext: toBase64(sealed.ciphertext) } };
  } else {
    stored = carriesValues(jobs) ? { withheld: true } : { jobs };
  }
  await bucket.put(r2Keys.batchRequest(tenant, batchId), JSON.stringify(stored));
}

/** The batch's jobs as submitted; why they cannot be read; or undefined when no request was kept (an older version's batch). */
export async function readBatchRequest(bucket: R2Bucket, tenant: string, batchId: string, keys: CipherKey[]): Promise<StoredRequest> {
  const object = await bucket.get(r2Keys.batchRequest(tenant, batchId));
  if (!object) return undefined;
  const parsed = StoredBatchRequest.safeParse(JSON.parse(await object.text()));
  if (!parsed.success) return undefined;
  const stored = parsed.data;
  if ("withheld" in stored) return { unreadable: "withheld" };
  if ("jobs" in stored) return { jobs: stored.jobs };
  const opened = await openSecret(keys, tenant, sealedName(batchId), {
    keyId: stored.sealed.keyId,
    iv: fromBase64(stored.sealed.iv),
    ciphertext: fromBase64(stored.sealed.ciphertext),
  });
  if (opened === undefined) return { unreadable: "key-gone" };
  const jobs = Jobs.safeParse(JSON.parse(opened));
  return jobs.success ? { jobs: jobs.data.jobs } : undefined;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // In slices: String.fromCharCode takes its bytes as arguments, and a request may be megabytes.
  for (let at = 0; at < bytes.byteLength; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
