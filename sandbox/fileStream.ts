/**
 * A file's bytes from the SDK's `readFileStream` (server-sent events carrying base64 chunks), as
 * a byte stream read only as fast as its consumer takes it. Decoding is native (Buffer), so a
 * large artifact costs little CPU and leaves little garbage behind; the SDK's `streamFile`
 * decodes byte by byte in JavaScript.
 */
import { Buffer } from "node:buffer";
import { parseSSEStream } from "@cloudflare/sandbox";
import { z } from "zod";

const FileStreamEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("metadata"), encoding: z.enum(["base64", "utf-8"]) }),
  z.object({ type: z.literal("chunk"), data: z.string() }),
  z.object({ type: z.literal("complete") }),
  z.object({ type: z.literal("error"), error: z.string() }),
]);

/**
 * A stream whose bytes are already there never waits, and the runtime's thread then serves
 * nothing else until it ends: every this many bytes the stream lets other work run.
 */
const YIELD_EVERY_BYTES = 4 * 1024 * 1024;

export class FileStreamError extends Error {
  override readonly name = "FileStreamError";
}

export function decodeFileStream(sse: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const events = parseSSEStream<unknown>(sse)[Symbol.asyncIterator]();
  let encoding: "base64" | "utf-8" | undefined;
  let sinceYield = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sinceYield >= YIELD_EVERY_BYTES) {
        sinceYield = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      for (;;) {
        const next = await events.next();
        if (next.done) throw new FileStreamError("The file stream ended before its last chunk");
        const event = FileStreamEvent.safeParse(next.value);
        if (!event.success) continue;
        if (event.data.type === "metadata") encoding = event.data.encoding;
        else if (event.data.type === "error") throw new FileStreamError(`File streaming error: ${event.data.error}`);
        else if (event.data.type === "complete") return controller.close();
        else if (encoding === undefined) throw new FileStreamError("The file stream sent data before its metadata");
        else {
          const bytes = Buffer.from(event.data.data, encoding === "base64" ? "base64" : "utf8");
          sinceYield += bytes.byteLength;
          return controller.enqueue(bytes);
        }
      }
    },
    async cancel(reason) {
      await events.return?.(reason);
    },
  });
}
