/**
 * Server-Sent Events over a node:http response, with backpressure: `send` resolves once the socket
 * has taken the frame (or at once while its buffer has room), so producers never outrun a slow client.
 */
import type { ServerResponse } from "node:http";

export type SseWriter = {
  /** Writes one `data: <json>\n\n` frame; resolves when the caller may write more. */
  send(event: object): Promise<void>;
  end(): void;
  /** True once the client went away or the stream ended. */
  readonly closed: boolean;
  /** Fires once when the client disconnects before `end()`. */
  readonly aborted: AbortSignal;
};

export function openSse(res: ServerResponse): SseWriter {
  const controller = new AbortController();
  let ended = false;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();
  res.on("close", () => {
    if (!ended) controller.abort();
  });
  return {
    get closed() {
      return ended || controller.signal.aborted;
    },
    aborted: controller.signal,
    send(event) {
      if (ended || controller.signal.aborted) return Promise.resolve();
      if (res.write(`data: ${JSON.stringify(event)}\n\n`)) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          res.off("drain", done);
          controller.signal.removeEventListener("abort", done);
          resolve();
        };
        res.on("drain", done);
        controller.signal.addEventListener("abort", done);
      });
    },
    end() {
      if (ended) return;
      ended = true;
      res.end();
    },
  };
}
