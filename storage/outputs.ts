/**
 * Writing a job's stdout and stderr to R2, under the attempt that produced them (artifacts:
 * artifactPack.ts).
 */
import { r2Keys } from "./layout";

/** One attempt at a job: its outputs are stored apart from every other attempt's. */
export interface JobAttempt {
  tenant: string;
  jobId: string;
  attempt: number;
}

export async function putOutput(bucket: R2Bucket, at: JobAttempt, stream: "stdout" | "stderr", bytes: Uint8Array): Promise<void> {
  await bucket.put(r2Keys.output(at.tenant, at.jobId, at.attempt, stream), bytes, {
    httpMetadata: { contentType: "text/plain; charset=utf-8" },
  });
}
