/**
 * Writing job output and artifacts to R2. Streams are uploaded as they are read, hashed on
 * the way, so a large artifact never sits whole in the Worker's memory.
 */
import { hex } from "./hex";
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

/** Uploads `size` bytes from `body` and returns their SHA-256 (hex). */
export async function putArtifact(
  bucket: R2Bucket,
  at: JobAttempt,
  path: string,
  file: { body: ReadableStream<Uint8Array>; size: number },
  contentType: string,
): Promise<string> {
  // Hashed in line, chunk by chunk, so the upload's pace sets the read's: a tee would let the fast
  // hash branch pull the whole file while the slower R2 branch buffers what it has not taken yet.
  const digest = new crypto.DigestStream("SHA-256");
  const digestWriter = digest.getWriter();
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      await digestWriter.write(chunk);
      controller.enqueue(chunk);
    },
    async flush() {
      await digestWriter.close();
    },
  });
  const sized = new FixedLengthStream(file.size);
  await Promise.all([
    file.body.pipeThrough(hashing).pipeTo(sized.writable),
    bucket.put(r2Keys.artifact(at.tenant, at.jobId, at.attempt, path), sized.readable, { httpMetadata: { contentType } }),
  ]);
  return hex(await digest.digest);
}
