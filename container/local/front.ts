/**
 * The local container host's HTTP API (the Front API in schemas/sandboxHost.ts): container
 * lifecycle per sandbox key, and a streaming proxy to each container's agent, all behind a
 * bearer token. Its one client is the Worker's stand-in for workerd's container handle.
 */
import type { HttpBindings } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { type Context, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import {
  AGENT_PORT,
  type ContainerExit,
  ContainerKey,
  type ContainerState,
  type HostErrorCode,
  SignalRequest,
  StartContainerRequest,
} from "../../schemas/sandboxHost";
import { ContainerStartError } from "./container";
import { CapacityReachedError, type ContainerPool } from "./containers";
import { proxyToAgent, UpstreamUnreachableError } from "./proxy";

export class FrontError extends Error {
  constructor(
    readonly code: HostErrorCode,
    readonly status: ContentfulStatusCode,
    message: string,
  ) {
    super(message);
  }
}

type Env = { Bindings: HttpBindings };

function keyParam(c: Context<Env>): string {
  const parsed = ContainerKey.safeParse(c.req.param("key"));
  if (!parsed.success) throw new FrontError("BAD_REQUEST", 400, parsed.error.issues[0]?.message ?? "Invalid container key");
  return parsed.data;
}

async function body<T extends z.ZodType>(c: Context<Env>, schema: T, empty: unknown): Promise<z.output<T>> {
  const text = await c.req.text();
  let json: unknown = empty;
  try {
    if (text.trim() !== "") json = JSON.parse(text);
  } catch {
    throw new FrontError("BAD_REQUEST", 400, "Body must be JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new FrontError("BAD_REQUEST", 400, parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "));
  return parsed.data;
}

/** The path and query to send to the agent: whatever follows `/ports/{port}` in the raw URL. */
function agentPath(rawUrl: string, key: string, port: string): string {
  const prefix = `/v1/containers/${key}/ports/${port}`;
  // Keys and ports are plain ASCII, so a routed URL starts with them verbatim unless it was
  // spelled oddly (percent-encoded key): refuse rather than guess which path was meant.
  if (!rawUrl.startsWith(prefix)) throw new FrontError("BAD_REQUEST", 400, `Unexpected proxy URL ${rawUrl}`);
  const rest = rawUrl.slice(prefix.length);
  if (rest === "") return "/";
  return rest.startsWith("?") ? `/${rest}` : rest;
}

export function createFrontApp(pool: ContainerPool, token: string): Hono<Env> {
  const app = new Hono<Env>();
  app.use("/v1/*", bearerAuth({ token }));

  app.post("/v1/containers/:key/start", async (c) => {
    const key = keyParam(c);
    const request = await body(c, StartContainerRequest, {});
    await pool.start(key, request).catch((error: unknown) => {
      if (error instanceof CapacityReachedError) throw new FrontError("MAX_CONTAINERS", 503, error.message);
      if (!(error instanceof ContainerStartError)) console.error(`local container host: starting ${key} failed`, error);
      throw new FrontError("START_FAILED", 503, error instanceof Error ? error.message : String(error));
    });
    return c.json({ running: true } satisfies ContainerState);
  });

  app.get("/v1/containers/:key", (c) => c.json({ running: pool.running(keyParam(c)) !== undefined } satisfies ContainerState));

  app.get("/v1/containers/:key/monitor", async (c) => c.json({ exitCode: await pool.monitor(keyParam(c)) } satisfies ContainerExit));

  app.post("/v1/containers/:key/signal", async (c) => {
    const key = keyParam(c);
    const { signal } = await body(c, SignalRequest, undefined);
    pool.signal(key, signal);
    return c.body(null, 204);
  });

  app.delete("/v1/containers/:key", async (c) => {
    await pool.destroy(keyParam(c));
    return c.body(null, 204);
  });

  const proxy = async (c: Context<Env>) => {
    const key = keyParam(c);
    const port = c.req.param("port") ?? "";
    const container = pool.running(key);
    if (port !== String(AGENT_PORT))
      throw new FrontError("NOT_LISTENING", 502, `Container ${key} listens on port ${AGENT_PORT} only, not ${port}`);
    if (!container) throw new FrontError("NOT_LISTENING", 502, `Container ${key} is not running`);
    const { incoming, outgoing } = c.env;
    const path = agentPath(incoming.url ?? "/", key, port);
    const release = pool.lease(key);
    try {
      await proxyToAgent(incoming, outgoing, { socketPath: container.spec.socketPath, agent: container.agent, path }, release);
    } catch (error) {
      if (error instanceof UpstreamUnreachableError)
        throw new FrontError("NOT_LISTENING", 502, `Container ${key} did not answer: ${error.message}`);
      throw error;
    }
    return RESPONSE_ALREADY_SENT;
  };
  app.all("/v1/containers/:key/ports/:port", proxy);
  app.all("/v1/containers/:key/ports/:port/*", proxy);

  app.notFound((c) => c.json({ error: { code: "NOT_FOUND", message: `No route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((error, c) => {
    if (error instanceof FrontError) return c.json({ error: { code: error.code, message: error.message } }, error.status);
    if (error instanceof HTTPException) {
      // Raised by bearerAuth only (missing, malformed or wrong token): one answer for all.
      return c.json({ error: { code: "UNAUTHORIZED", message: "Missing or wrong bearer token" } }, 401);
    }
    console.error("local container host: unexpected error", error);
    return c.json({ error: { code: "INTERNAL", message: "Internal error in the local container host" } }, 500);
  });
  return app;
}
