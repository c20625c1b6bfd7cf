/**
 * The local sandbox host's HTTP API: exec, file write/read/delete and listing for each sandbox
 * ID, behind a bearer token. The Worker's local adapter (sandbox/local.ts) is its only client.
 */
import { createReadStream } from "node:fs";
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { WORKSPACE_ROOT } from "../../schemas/ids";
import { type HostErrorCode, HostExecRequest, type HostExecResult, type HostListResult } from "../../schemas/sandboxHost";
import { type IsolationMode, type RunLimits, runIsolated } from "./isolation";
import type { CgroupLimiter } from "./limits";
import type { SessionPool } from "./session";
import { PathRefusedError, type Workspaces } from "./workspace";

export interface HostOptions {
  workspaces: Workspaces;
  token: string;
  isolation: IsolationMode;
  limits: RunLimits;
  /** Persistent sessions; without them (or with network asked for) each exec spawns its own namespace. */
  sessions?: SessionPool;
  /** Per-sandbox memory and process limits, where cgroups allow. */
  limiter?: CgroupLimiter;
}

class HostError extends Error {
  constructor(
    readonly code: HostErrorCode,
    readonly status: ContentfulStatusCode,
    message: string,
  ) {
    super(message);
  }
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

/** Turns file-system errors into the protocol's error codes. */
function fileError(error: unknown, path: string): unknown {
  const code = errnoCode(error);
  if (code === "ENOENT" || code === "ENOTDIR") return new HostError("FILE_NOT_FOUND", 404, `File not found: ${path}`);
  if (code === "EISDIR") return new HostError("IS_DIRECTORY", 409, `${path} is a directory, not a file`);
  return error;
}

/** A file as a web stream, read as the client consumes it. */
function fileStream(path: string): ReadableStream<Uint8Array> {
  const chunks = createReadStream(path)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else if (next.value instanceof Uint8Array) controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return?.();
    },
  });
}

export function createHostApp(options: HostOptions): Hono {
  const { workspaces } = options;
  const app = new Hono();

  app.get("/healthz", (c) => c.json({ ok: true, isolation: options.isolation }));
  app.use("/v1/*", bearerAuth({ token: options.token }));

  const pathParam = (query: string | undefined): string => {
    if (!query) throw new HostError("BAD_REQUEST", 400, "Query parameter 'path' is required");
    return query;
  };

  app.post("/v1/sandboxes/:sandboxId/exec", async (c) => {
    const parsed = HostExecRequest.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) throw new HostError("BAD_REQUEST", 400, parsed.error.issues[0]?.message ?? "Invalid exec request");
    const request = parsed.data;
    const sandboxId = c.req.param("sandboxId");
    const workspaceDir = await workspaces.dirFor(sandboxId);
    // The working directory is created on demand, like `mkdir -p cwd && cd cwd`.
    await workspaces.resolve(sandboxId, request.cwd, { kind: "dir", createParents: true });
    const result =
      options.sessions && options.isolation === "bubblewrap" && !request.network
        ? await options.sessions.exec(sandboxId, workspaceDir, request, c.req.raw.signal)
        : await runIsolated(
            options.isolation,
            workspaceDir,
            request,
            options.limits,
            options.limiter?.prepare(sandboxId) ?? [],
            c.req.raw.signal,
          );
    const body: HostExecResult = {
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      stdoutBase64: result.stdout.toString("base64"),
      stderrBase64: result.stderr.toString("base64"),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
    };
    return c.json(body);
  });

  app.put("/v1/sandboxes/:sandboxId/files", async (c) => {
    const path = pathParam(c.req.query("path"));
    const target = await workspaces.resolve(c.req.param("sandboxId"), path, { kind: "file", createParents: true });
    const content = new Uint8Array(await c.req.arrayBuffer());
    await writeFile(target, content).catch((error: unknown) => {
      throw fileError(error, path);
    });
    return c.json({ path, size: content.byteLength });
  });

  app.get("/v1/sandboxes/:sandboxId/files", async (c) => {
    const path = pathParam(c.req.query("path"));
    const target = await workspaces.resolve(c.req.param("sandboxId"), path, { kind: "file" });
    const info = await stat(target).catch((error: unknown) => {
      throw fileError(error, path);
    });
    if (info.isDirectory()) throw new HostError("IS_DIRECTORY", 409, `${path} is a directory, not a file`);
    const body = fileStream(target);
    return new Response(body, { headers: { "content-type": "application/octet-stream", "content-length": String(info.size) } });
  });

  app.delete("/v1/sandboxes/:sandboxId/files", async (c) => {
    const path = pathParam(c.req.query("path"));
    const target = await workspaces.resolve(c.req.param("sandboxId"), path, { kind: "file" });
    const info = await stat(target).catch((error: unknown) => {
      throw fileError(error, path);
    });
    if (info.isDirectory()) throw new HostError("IS_DIRECTORY", 409, `${path} is a directory; only files can be deleted`);
    await rm(target);
    return c.json({ path, deleted: true });
  });

  app.get("/v1/sandboxes/:sandboxId/list", async (c) => {
    const path = c.req.query("path") ?? WORKSPACE_ROOT;
    const dir = await workspaces.resolve(c.req.param("sandboxId"), path, { kind: "dir" });
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: unknown) => {
      throw fileError(error, path);
    });
    const files: HostListResult["files"] = [];
    for (const entry of entries) {
      // Symlinks are not followed: an artifact is a regular file that lives in the workspace.
      if (!entry.isFile()) continue;
      const hostPath = join(entry.parentPath, entry.name);
      const size = (await stat(hostPath)).size;
      files.push({ path: `${path === "/" ? "" : path}/${hostPath.slice(dir.length + 1)}`, size });
    }
    files.sort((a, b) => a.path.localeCompare(b.path));
    return c.json({ files } satisfies HostListResult);
  });

  app.notFound((c) => c.json({ error: { code: "BAD_REQUEST", message: `No route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((error, c) => {
    if (error instanceof HostError) return c.json({ error: { code: error.code, message: error.message } }, error.status);
    if (error instanceof PathRefusedError) return c.json({ error: { code: "PATH_REFUSED", message: error.message } }, 400);
    if (error instanceof HTTPException) {
      // Raised by bearerAuth: answer in the protocol's JSON shape.
      return c.json({ error: { code: "UNAUTHORIZED", message: "Missing or wrong bearer token" } }, 401);
    }
    console.error("local sandbox host: unexpected error", error);
    return c.json({ error: { code: "INTERNAL", message: "Internal error in the local sandbox host" } }, 500);
  });
  return app;
}
