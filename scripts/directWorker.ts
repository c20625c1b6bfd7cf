/**
 * The local stack's API port, in front of the Worker's own HTTP server instead of wrangler's dev
 * proxy, with one fresh connection to the Worker per request.
 *
 * Under `wrangler dev` (4.86) every request went through a ProxyWorker in a second workerd, which
 * forwarded it over a pool of kept-alive connections to the Worker's workerd. workerd closes a
 * kept-alive connection that waits for its next request longer than its pipeline timeout (5 s),
 * and while a burst keeps its one thread busy for seconds at a time, it closes connections that
 * way right after answering on them (seen here: a client's second request on a connection met its
 * close, with the first answer read). A request the proxy had sent on such a connection failed,
 * and the proxy answered a POST with `503 Your worker restarted mid-request`: it tells a restart
 * from a lost connection by comparing the request's whole URL with the Worker's origin, so any
 * path reads as a restart, though nothing restarted (workers-sdk issue #14641).
 *
 * Here Node's HTTP server keeps the clients' connections (it announces its keep-alive timeout, so
 * clients stop reusing a connection before it closes it), and each request goes to the Worker on
 * a connection of its own that never waits for a second request. The Worker's address comes from
 * wrangler's own `reloadComplete` event.
 */
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders, request, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { unstable_DevEnv } from "wrangler";
import type { ErrorBody } from "../schemas/api";

export class ApiPortError extends Error {
  override readonly name = "ApiPortError";
}

type DevEnvEvent = Parameters<unstable_DevEnv["dispatch"]>[0];

interface Address {
  hostname: string;
  port: number;
}

/**
 * wrangler's dev environment, unchanged, that also keeps the address of the Worker's server as
 * each (re)load reports it; connections that arrive while it reloads wait for the new one.
 */
export class DirectDevEnv extends unstable_DevEnv {
  private current: Promise<Address> | undefined;
  private settle: ((address: Address) => void) | undefined;

  constructor() {
    super();
    this.pending();
  }

  /** The Worker's server now, or once its (re)load completes. */
  workerAddress(): Promise<Address> {
    return this.current ?? this.pending();
  }

  override dispatch(event: DevEnvEvent): void {
    if (event.type === "reloadStart" && this.settle === undefined) this.pending();
    if (event.type === "reloadComplete") {
      const { hostname, port } = event.proxyData.userWorkerUrl;
      this.settle?.({ hostname, port: Number(port) });
      this.settle = undefined;
      this.current = Promise.resolve({ hostname, port: Number(port) });
    }
    super.dispatch(event);
  }

  private pending(): Promise<Address> {
    this.current = new Promise((resolve) => {
      this.settle = resolve;
    });
    return this.current;
  }
}

/** Connection-level headers: they describe one hop, and each side of this one sets its own. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"]);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase()),
  );
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) kept[name] = value;
  return kept;
}

function unavailable(error: Error): string {
  const body: ErrorBody = {
    error: {
      code: "WORKER_UNAVAILABLE",
      message: `The local Worker did not answer (${error.message}); is the stack still starting or stopping?`,
    },
  };
  return JSON.stringify(body);
}

/**
 * Listens on `hostname:port` and hands each request to the Worker's server; `log` gets a line
 * per request (method, path, status, time), as `wrangler dev` prints them.
 */
export async function serveWorkerDirectly(
  devEnv: DirectDevEnv,
  hostname: string,
  port: number,
  log?: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
  const open = new Set<Socket>();
  // No deadline for a whole request to arrive (Node's default is 5 minutes): a large upload over
  // loopback is the Worker's to limit, as it was through wrangler's proxy. No keep-alive timeout:
  // an idle connection is closed by its client only, so no request can meet the server's close.
  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 0 }, (incoming, answer) => {
    const started = performance.now();
    if (log)
      answer.once("finish", () =>
        log(
          `${incoming.method} ${incoming.url} ${answer.statusCode} ${STATUS_CODES[answer.statusCode] ?? ""} (${Math.round(performance.now() - started)}ms)`,
        ),
      );
    void devEnv.workerAddress().then(({ hostname: workerHost, port: workerPort }) => {
      // agent: false: a new connection, closed after this one answer.
      const forwarded = request({
        host: workerHost,
        port: workerPort,
        method: incoming.method,
        path: incoming.url,
        headers: endToEnd(incoming.headers),
        agent: false,
      });
      forwarded.on("response", (reply) => {
        // An answer cut off upstream is cut off here too, not ended as if it were complete.
        reply.on("error", () => answer.destroy());
        reply.once("close", () => {
          if (!reply.complete) answer.destroy();
        });
        try {
          answer.writeHead(reply.statusCode ?? 502, reply.statusMessage, endToEnd(reply.headers));
        } catch {
          answer.destroy();
          return;
        }
        reply.pipe(answer);
      });
      forwarded.on("error", (error) => {
        if (answer.headersSent) answer.destroy();
        else answer.writeHead(502, { "content-type": "application/json" }).end(unavailable(error));
      });
      // A client that goes away before its answer ends the Worker's request too (a long-poll, a download).
      incoming.on("error", () => forwarded.destroy());
      answer.on("error", () => forwarded.destroy());
      answer.once("close", () => {
        if (!answer.writableFinished) forwarded.destroy();
      });
      incoming.pipe(forwarded);
    });
  });
  server.on("connection", (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new ApiPortError(`Port ${port} is in use: stop what listens there, or set PORT to another port`)
          : error,
      ),
    );
    server.listen(port, hostname, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
