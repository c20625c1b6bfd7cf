/**
 * Cache archives in R2: a new object for every save (its name starts with its write time), so a
 * key saved twice within a second never writes one R2 key twice; deleting one waits until a
 * second has passed since its write, since a delete counts as a write too.
 */
import { sha256Hex } from "./hex";
import { WRITE_SPACING_MS } from "./jobStore";
import { r2Keys } from "./layout";

export async function newCacheObjectKey(tenant: string, cacheKey: string): Promise<string> {
  return r2Keys.cacheArchive(tenant, await sha256Hex(cacheKey), `${Date.now()}-${crypto.randomUUID()}`);
}

const writtenAt = (objectKey: string) => Number(/\/(\d+)-[^/]*\.tar\.gz$/.exec(objectKey)?.[1] ?? 0);

export async function deleteCacheObjects(bucket: R2Bucket, objectKeys: string[]): Promise<void> {
  if (objectKeys.length === 0) return;
  const waitMs = Math.max(...objectKeys.map(writtenAt)) + WRITE_SPACING_MS - Date.now();
  if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  // R2 deletes at most 1,000 keys per call.
  for (let start = 0; start < objectKeys.length; start += 1000) await bucket.delete(objectKeys.slice(start, start + 1000));
}
