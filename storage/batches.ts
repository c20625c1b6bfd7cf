/**
 * A batch's manifest in R2: its jobs, with what each needs, written before any of them can run.
 * Finishing a job reads it to wake the jobs that need it; `GET /v1/batches/{id}` reads it too.
 */
import { z } from "zod";
import { r2Keys } from "./layout";

export const BatchManifest = z.object({
  batchId: z.string(),
  createdAt: z.string(),
  jobs: z.array(z.object({ jobId: z.string(), sandboxId: z.string(), name: z.string().nullable(), needs: z.array(z.string()) })),
});
export type BatchManifest = z.infer<typeof BatchManifest>;

export async function saveBatch(bucket: R2Bucket, tenant: string, manifest: BatchManifest): Promise<void> {
  await bucket.put(r2Keys.batch(tenant, manifest.batchId), JSON.stringify(manifest));
}

export async function readBatch(bucket: R2Bucket, tenant: string, batchId: string): Promise<BatchManifest | undefined> {
  const object = await bucket.get(r2Keys.batch(tenant, batchId));
  if (!object) return undefined;
  const parsed = BatchManifest.safeParse(JSON.parse(await object.text()));
  return parsed.success ? parsed.data : undefined;
}
