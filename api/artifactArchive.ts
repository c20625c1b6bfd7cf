/**
 * A finished job's artifacts as one gzip-compressed tar, built while it downloads: one read of
 * the attempt's pack (storage/artifactPack.ts) is cut into entries by the sizes in its index, each
 * wrapped in a tar header by modern-tar's packer, and CompressionStream gzips the result. Memory
 * stays flat whatever the artifacts' sizes or number: the packer queues at most 8 MiB before it
 * stops reading R2, gzip is fed only as fast as the client takes its output, and the index is
 * read one page (1,000 entries) at a time.
 */
import { createTarPacker } from "modern-tar";
import type { JobRecord } from "../schemas/job";
import { packedArtifacts, readPack } from "../storage/artifactPack";
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
    if (record.artifactIndex) {
      const pack = await readPack(bucket, record);
      if (!pack) throw new Error("the artifact pack is missing from storage");
      if (pack.size !== record.artifactIndex.bytes) {
        throw new Error(`the artifact pack is ${pack.size} bytes in storage, ${record.artifactIndex.bytes} in the record`);
      }
      const source = pack.body.getReader();
      let held: Uint8Array = new Uint8Array();
      for await (const artifact of packedArtifacts(bucket, record)) {
        const entry = controller.add({ name: artifact.path, type: "file", size: artifact.size, mode: artifact.mode, mtime });
        const writer = entry.getWriter();
        // The entry's bytes: what is held from the last read first, then further reads.
        for (let left = artifact.size; left > 0; ) {
          if (held.byteLength === 0) {
            const next = await source.read();
            if (next.done) throw new Error(`the artifact pack ended inside ${artifact.path}`);
            held = next.value;
          }
          const take = Math.min(left, held.byteLength);
          await writer.write(held.subarray(0, take));
          held = held.subarray(take);
          left -= take;
        }
        await writer.close();
      }
      await source.cancel();
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
