/**
 * A finished job's artifacts as one gzip-compressed tar, built while it downloads: each object
 * streams from R2 into the tar stream (modern-tar), which CompressionStream gzips. Memory stays
 * flat whatever the artifacts' sizes: the packer queues at most 8 MiB before it stops reading R2,
 * and gzip is fed only as fast as the client takes its output.
 */
import { createTarPacker } from "modern-tar";
import type { JobRecord } from "../schemas/job";
import { r2Keys } from "../storage/layout";
import { contentDisposition } from "./downloads";

export function archiveFilename(jobId: string): string {
  return `${jobId}-artifacts.tar.gz`;
}

/** Streams every artifact of `record` (paths relative to the job's cwd, modes kept); none gives an empty archive. */
export function serveArtifactArchive(bucket: R2Bucket, record: JobRecord): Response {
  const { readable, controller } = createTarPacker();
  // Every entry carries the job's finish time, so the same job always gives the same tar.
  const mtime = new Date(record.finishedAt ?? record.createdAt);
  const packing = async () => {
    for (const artifact of record.artifacts) {
      const object = await bucket.get(r2Keys.artifact(record.tenant, record.id, record.attempts, artifact.path));
      if (!object) throw new Error(`artifact ${artifact.path} is missing from storage`);
      if (object.size !== artifact.size) {
        throw new Error(`artifact ${artifact.path} is ${object.size} bytes in storage, ${artifact.size} in the record`);
      }
      const entry = controller.add({ name: artifact.path, type: "file", size: artifact.size, mode: artifact.mode, mtime });
      await object.body.pipeTo(entry);
    }
    controller.finalize();
  };
  packing().catch((error: unknown) => {
    // The 200 has gone out: failing the stream makes the client's download fail, where ending it
    // would hand over a valid but incomplete archive. A client that hung up also lands here.
    console.warn(`Archive of job ${record.id} stopped: ${error instanceof Error ? error.message : String(error)}`);
    controller.error(error);
  });
  return new Response(gzipAtClientPace(readable), {
    status: 200,
    headers: {
      "content-type": "application/gzip",
      "content-disposition": contentDisposition("attachment", archiveFilename(record.id)),
    },
  });
}

/**
 * gzip that reads its input only as the client takes its output. workerd's CompressionStream
 * accepts writes without limit while its output is unread, so a plain pipeThrough would pull a
 * whole archive out of R2 into memory ahead of a slow client (measured: as much as the file).
 */
function gzipAtClientPace(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const gzip = new CompressionStream("gzip");
  const input = source.getReader();
  const writer = gzip.writable.getWriter();
  const output = gzip.readable.getReader();
  let inputDone = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const read = output.read();
        let outputReady = false;
        read.then(
          () => {
            outputReady = true;
          },
          () => {
            outputReady = true;
          },
        );
        try {
          // One input chunk at a time until gzip has output: deflate may need several.
          while (!outputReady && !inputDone) {
            const next = await input.read();
            if (next.done) {
              inputDone = true;
              await writer.close();
            } else await writer.write(next.value);
          }
        } catch (error) {
          await writer.abort(error).catch(() => undefined);
          throw error;
        }
        const result = await read;
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      async cancel(reason) {
        await Promise.all([input.cancel(reason), output.cancel(reason)]);
      },
    },
    { highWaterMark: 0 },
  );
}
