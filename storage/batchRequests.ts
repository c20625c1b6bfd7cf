/**
 * A batch's jobs as submitted (after matrix expansion), written once beside its manifest so that
 * `POST /v1/batches/{id}/rerun` can run them again. It holds env values, stdin and file content:
 * it stays in the private bucket, read only by the Worker, until the bucket's retention removes it.
 */
import { z } from "zod";
import { BatchEntry } from "../schemas/job";
import { r2Keys } from "./layout";

const StoredBatchRequest = z.object({ jobs: z.array(BatchEntry) });

export async function saveBatchRequest(bucket: R2Bucket, tenant: string, batchId: string, jobs: BatchEntry[]): Promise<void> {
  await bucket.put(r2Keys.batchRequest(tenant, batchId), JSON.stringify({ jobs }));
}

export async function readBatchRequest(bucket: R2Bucket, tenant: string, batchId: string): Promise<BatchEntry[] | undefined> {
  const object = await bucket.get(r2Keys.batchRequest(tenant, batchId));
  if (!object) return undefined;
  const parsed = StoredBatchRequest.safeParse(JSON.parse(await object.text()));
  return parsed.success ? parsed.data.jobs : undefined;
}
