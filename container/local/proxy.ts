/**
 * Streams one HTTP request to a container's agent over its Unix socket and the answer back,
 * without buffering either body: node streams are piped with backpressure, so a gigabyte passes
 * in flat memory and each server-sent event reaches the client as the agent writes it. If the
 * client goes away, the upstream request is destroyed, so the agent sees its connection close.
 */
import { type Agent, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from "node:http";

/** Headers that describe one hop, not the message; plus the front's own credentials. */
const HOP_HEADERS = new Set([
  "authorization",
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function endToEndHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_HEADERS.has(name) && value !== undefined) kept[name] = value;
  }
  return kept;
}

export class UpstreamUnreachableError extends Error {
  override readonly name = "UpstreamUnreachableError";
}

export interface ProxyTarget {
  socketPath: string;
  /** Keep-alive pool of connections to this socket. */
  agent: Agent;
  /** Path and query as the agent should see them, e.g. `/api/execute?x=1`. */
  path: string;
}

/**
 * Sends `incoming` to the agent and, once it answers, pipes its answer into `outgoing`. Resolves
 * when the answer's head has been written (the bodies keep streaming), rejects with
 * UpstreamUnreachableError if the agent could not be reached before answering; `onDone` runs once
 * both directions have finished or been torn down.
 */
export function proxyToAgent(incoming: IncomingMessage, outgoing: ServerResponse, target: ProxyTarget, onDone: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      onDone();
    };
    const upstream = request({
      socketPath: target.socketPath,
      agent: target.agent,
      method: incoming.method,
      path: target.path,
      headers: { ...endToEndHeaders(incoming.headers), host: "localhost:3000" },
    });
    // Small writes (one SSE event) must leave at once, not wait for more to coalesce.
    upstream.on("socket", (socket) => socket.setNoDelay?.(true));

    upstream.on("response", (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEndHeaders(answer.headers));
      outgoing.flushHeaders();
      answer.pipe(outgoing);
      answer.on("end", finish);
      answer.on("error", () => {
        outgoing.destroy();
        finish();
      });
      resolve();
    });
    upstream.on("error", (error) => {
      finish();
      if (outgoing.headersSent) outgoing.destroy();
      else reject(new UpstreamUnreachableError(error.message));
    });
    // The client disconnected before the answer ended (a cancelled stream): tear down upstream.
    outgoing.on("close", () => {
      if (!outgoing.writableFinished) upstream.destroy();
      finish();
    });
    incoming.pipe(upstream);
  });
}
