/**
 * The agent's HTTP server: the Sandbox SDK container API (as `cloudflare/sandbox` serves it on port
 * 3000), routed by method and path. Known failures answer the container's JSON error shape;
 * anything unexpected is logged and answered as INTERNAL_ERROR.
 */
import { createServer, type Server } from "node:http";
import type { AgentContext, RouteHandler } from "./context.ts";
import { AgentError, ErrorCode } from "./errors.ts";
import { handleExecute, handleExecuteStream } from "./execRoutes.ts";
import { fileRoutes } from "./fileRoutes.ts";
import { notFoundError, readJsonBody, sendError, sendJson, timestamp } from "./http.ts";
import { SessionCreateRequest, SessionDeleteRequest } from "./schemas.ts";

const healthy: RouteHandler = async (_req, res) => sendJson(res, 200, { success: true, status: "healthy", timestamp: timestamp() });

const routes: Record<string, RouteHandler> = {
  "GET /": async (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end("Sandbox agent ready");
  },
  "GET /api/ping": healthy,
  "GET /api/health": healthy,
  "GET /api/version": async (_req, res, { version }) => sendJson(res, 200, { success: true, version, timestamp: timestamp() }),
  "POST /api/session/create": async (req, res, { sessions }) => {
    const body = await readJsonBody(req, SessionCreateRequest);
    const id = body.id ?? `session_${Date.now()}_${Math.random().toString(16).slice(2, 14)}`;
    const session = sessions.create({ ...body, id });
    sendJson(res, 200, { success: true, data: { id: session.id, cwd: session.cwd }, containerPlacementId: null, timestamp: timestamp() });
  },
  "POST /api/session/delete": async (req, res, { sessions }) => {
    const { sessionId } = await readJsonBody(req, SessionDeleteRequest);
    await sessions.delete(sessionId);
    sendJson(res, 200, { success: true, sessionId, timestamp: timestamp() });
  },
  "GET /api/process/list": async (req, res, { processes }) => {
    const status = new URL(req.url ?? "/", "http://agent").searchParams.get("status");
    const list = processes.list(status).map(({ id, command, status, startTime, exitCode }) => ({
      id,
      command,
      status,
      startTime: startTime.toISOString(),
      exitCode,
    }));
    sendJson(res, 200, { success: true, processes: list, timestamp: timestamp() });
  },
  "DELETE /api/process/kill-all": async (_req, res, { processes }) => {
    // As the real container: the commands it tracks, not every process in the sandbox.
    const cleanedCount = await processes.killAll();
    sendJson(res, 200, { success: true, cleanedCount, timestamp: timestamp() });
  },
  "POST /api/execute": handleExecute,
  "POST /api/execute/stream": handleExecuteStream,
  ...fileRoutes,
};

export function createAgentServer(context: AgentContext): Server {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://agent").pathname;
    const handler = routes[`${req.method} ${path}`];
    const handled = handler ? handler(req, res, context) : Promise.reject(notFoundError());
    handled.catch((error: unknown) => {
      const known =
        error instanceof AgentError
          ? error
          : new AgentError(ErrorCode.INTERNAL_ERROR, error instanceof Error ? error.message : String(error), {
              stack: error instanceof Error ? error.stack : undefined,
            });
      if (!(error instanceof AgentError)) console.error(`agent: ${req.method} ${path} failed`, error);
      // A stream that already started can only be cut; its client sees the stream end early.
      if (res.headersSent) res.destroy();
      else sendError(res, known);
    });
  });
  // Commands and file streams may legitimately run for hours.
  server.requestTimeout = 0;
  server.timeout = 0;
  // No keep-alive timeout: an idle connection is closed by its client (the host's pool) only. With
  // Node's 5 s, a host lagging under a burst reused connections the agent had just closed, and the
  // request met "write EPIPE" (the SDK then failed the job's command with a 500).
  server.keepAliveTimeout = 0;
  return server;
}
