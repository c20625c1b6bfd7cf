/**
 * `POST /api/read/stream`: the file as SSE frames — metadata, chunks of 65535 bytes (base64 for
 * binary files, UTF-8 text otherwise), complete — read from disk only as fast as the client takes
 * them, so a multi-GiB file streams in flat memory. Errors are SSE `error` frames with status 200,
 * as the real container sends them.
 */
import { open } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { StringDecoder } from "node:string_decoder";
import { fileMetadata } from "./files.ts";
import { openSse } from "./sse.ts";

/** The real container's chunk size (a multiple of 3 would avoid base64 padding; it is not one). */
export const STREAM_CHUNK_BYTES = 65535;

export async function streamSandboxFile(res: ServerResponse, path: string, displayPath: string): Promise<void> {
  const sse = openSse(res);
  try {
    const metadata = await fileMetadata(path, displayPath, "read");
    const handle = await open(path, "r");
    try {
      await sse.send({ type: "metadata", ...metadata });
      const buffer = Buffer.alloc(STREAM_CHUNK_BYTES);
      const decoder = new StringDecoder("utf8");
      let bytesRead = 0;
      while (!sse.closed) {
        // Fill whole chunks so every frame but the last carries exactly STREAM_CHUNK_BYTES.
        let filled = 0;
        while (filled < STREAM_CHUNK_BYTES) {
          const { bytesRead: got } = await handle.read(buffer, filled, STREAM_CHUNK_BYTES - filled, null);
          if (got === 0) break;
          filled += got;
        }
        if (filled === 0) break;
        const slice = buffer.subarray(0, filled);
        bytesRead += filled;
        await sse.send({ type: "chunk", data: metadata.isBinary ? slice.toString("base64") : decoder.write(slice) });
        if (filled < STREAM_CHUNK_BYTES) break;
      }
      if (!metadata.isBinary) {
        const rest = decoder.end();
        if (rest.length > 0) await sse.send({ type: "chunk", data: rest });
      }
      await sse.send({ type: "complete", bytesRead });
    } finally {
      await handle.close();
    }
  } catch (error) {
    await sse.send({ type: "error", error: error instanceof Error ? error.message : String(error) });
  } finally {
    sse.end();
  }
}
