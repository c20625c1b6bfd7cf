/**
 * The original synchronous API (`POST /run`, `PUT|GET|DELETE /file`), kept byte-compatible for
 * existing clients and built on the job pipeline: each call submits a job and waits for it.
 * Errors keep the original `{ "error": "..." }` shape, with a `code` added.
 */
import { Hono } from "hono";
import { z } from "zod";
import { normalizeSlashes, SandboxId, WorkspaceFilePath } from "../schemas/ids";
import { DEFAULT_TIMEOUT_MS, isTerminal, type JobRecord, type JobRequest } from "../schemas/job";
import { readPack } from "../storage/artifactPack";
import { r2Keys } from "../storage/layout";
import type { ApiEnv } from "./context";
import { contentDisposition } from "./downloads";
import { ApiError, ErrorCode } from "./errors";

export const COMPAT_PATHS = ["/run", "/file"];

/** Extra wait beyond the job's own timeout for queueing and uploads. */
const QUEUE_ALLOWANCE_MS = 30_000;
/** Job errors that are the command's own failure: the original API answered them with the exit code. */
const COMMAND_FAILURES = ["NONZERO_EXIT", "KILLED_BY_SIGNAL"];

const RunBody = z.object({ command: z.string().optional() });
const WriteBody = z.object({ path: z.string().optional(), content: z.string().optional() });

function sandboxIdOf(c: { req: { header(name: string): string | undefined; query(name: string): string | undefined } }): string {
  const raw = c.req.header("x-sandbox-id") ?? c.req.query("sandbox_id");
  if (!raw) throw new ApiError(400, ErrorCode.MISSING_SANDBOX_ID, "Missing sandbox id. Provide x-sandbox-id header or ?sandbox_id=");
  const parsed = SandboxId.safeParse(raw.trim());
  if (!parsed.success) throw new ApiError(400, ErrorCode.INVALID_SANDBOX_ID, `Invalid sandbox id: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** The original normalization (trim, leading `/`, `//` collapsed), then the workspace rule. */
function workspacePathOf(raw: string | undefined): string {
  const trimmed = raw?.trim() ?? "";
  if (!trimmed)
    throw new ApiError(400, ErrorCode.INVALID_PATH, 'Missing path. Provide ?path=/workspace/<file> (or "path" in the JSON body)');
  const normalized = normalizeSlashes(trimmed.startsWith("/") ? trimmed : `/${trimmed}`);
  const parsed = WorkspaceFilePath.safeParse(normalized);
  if (!parsed.success) throw new ApiError(400, ErrorCode.INVALID_PATH, `Invalid path ${normalized}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new ApiError(400, ErrorCode.INVALID_JSON, "Request body must be JSON");
  }
}

export const compatRouter = new Hono<ApiEnv>();

/** Submits and waits; a job that cannot finish in time, or that the platform failed, is an error. */
async function runToCompletion(c: { var: ApiEnv["Variables"] }, sandboxId: string, request: JobRequest): Promise<JobRecord> {
  const submitted = await c.var.jobs.submit(sandboxId, request);
  const timeoutMs = request.type === "run" ? request.timeoutMs : DEFAULT_TIMEOUT_MS;
  const record = await c.var.jobs.waitFor(submitted.id, timeoutMs + QUEUE_ALLOWANCE_MS);
  if (!isTerminal(record.status)) {
    throw new ApiError(504, ErrorCode.JOB_NOT_FINISHED, `Job ${record.id} did not finish in time; poll GET /v1/jobs/${record.id}`);
  }
  if (record.status === "timed_out") {
    throw new ApiError(504, ErrorCode.JOB_TIMED_OUT, `Command timed out after ${timeoutMs} ms and was killed (job ${record.id})`);
  }
  if (record.status === "failed" && record.error?.code === "FILE_NOT_FOUND" && request.type === "file") {
    throw new ApiError(404, ErrorCode.FILE_NOT_FOUND, `File not found: ${request.path}`);
  }
  if (record.status === "failed" && record.error && !COMMAND_FAILURES.includes(record.error.code)) {
    const status = record.error.code === "IS_DIRECTORY" ? 400 : 502;
    throw new ApiError(status, ErrorCode.JOB_FAILED, `${record.error.message} (job ${record.id})`);
  }
  return record;
}

async function storedText(bucket: R2Bucket, key: string): Promise<string> {
  return (await (await bucket.get(key))?.text()) ?? "";
}

compatRouter.post("/run", async (c) => {
  const sandboxId = sandboxIdOf(c);
  const body = RunBody.safeParse(await readJson(c.req.raw));
  const command = body.success ? body.data.command?.trim() : undefined;
  if (!command) throw new ApiError(400, ErrorCode.INVALID_REQUEST, 'Missing command. Send {"command": "..."}');
  const record = await runToCompletion(c, sandboxId, {
    type: "run",
    command,
    cwd: "/workspace",
    env: {},
    secrets: [],
    cache: [],
    timeoutMs: DEFAULT_TIMEOUT_MS,
    retries: 0,
    inputs: [],
    artifacts: [],
  });
  const [output, error] = await Promise.all([
    storedText(c.env.JOB_OUTPUT, r2Keys.output(record.tenant, record.id, record.attempts, "stdout")),
    storedText(c.env.JOB_OUTPUT, r2Keys.output(record.tenant, record.id, record.attempts, "stderr")),
  ]);
  return c.json({ output, error, exitCode: record.exitCode, success: record.exitCode === 0 });
});

compatRouter.put("/file", async (c) => {
  const sandboxId = sandboxIdOf(c);
  const body = WriteBody.safeParse(await readJson(c.req.raw));
  if (!body.success)
    throw new ApiError(400, ErrorCode.INVALID_REQUEST, 'Body must be {"path": "...", "content": "..."} with string values');
  const path = workspacePathOf(body.data.path);
  if (body.data.content === undefined)
    throw new ApiError(400, ErrorCode.INVALID_REQUEST, 'Missing content. Send {"path": "...", "content": "..."} ("" for an empty file)');
  await runToCompletion(c, sandboxId, { type: "file", op: "write", path, content: body.data.content, encoding: "utf-8" });
  return c.json({ path, length: new TextEncoder().encode(body.data.content).byteLength });
});

compatRouter.get("/file", async (c) => {
  const sandboxId = sandboxIdOf(c);
  const path = workspacePathOf(c.req.query("path"));
  const record = await runToCompletion(c, sandboxId, { type: "file", op: "read", path });
  const artifact = record.artifacts[0];
  const object = artifact && artifact.size > 0 ? await readPack(c.env.JOB_OUTPUT, record) : null;
  if (!artifact || (artifact.size > 0 && !object)) {
    throw new ApiError(502, ErrorCode.INTERNAL, `The content of ${path} was not stored (job ${record.id})`);
  }
  // A read job's pack holds its one file and nothing else.
  const body = object ? object.body : new Blob([]).stream();
  if (c.req.query("mode") === "download") {
    return new Response(body, {
      headers: {
        "content-type": artifact.contentType,
        "content-length": String(artifact.size),
        "content-disposition": contentDisposition("attachment", path.slice(path.lastIndexOf("/") + 1)),
      },
    });
  }
  return new Response(contentAsJson(path, body), { headers: { "content-type": "application/json" } });
});

/**
 * `{"path": ..., "content": ...}` written as the file streams from R2: decoded as UTF-8 (as
 * `text()` would) and escaped piece by piece, so a large file is never held whole. A read that
 * fails part-way ends the body early (the status has been sent): the client sees invalid JSON.
 */
function contentAsJson(path: string, body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return body.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`{"path":${JSON.stringify(path)},"content":"`));
      },
      // The decoder never splits a character, so each piece escapes on its own.
      transform(text, controller) {
        controller.enqueue(encoder.encode(JSON.stringify(text).slice(1, -1)));
      },
      flush(controller) {
        controller.enqueue(encoder.encode('"}'));
      },
    }),
  );
}

compatRouter.delete("/file", async (c) => {
  const sandboxId = sandboxIdOf(c);
  const path = workspacePathOf(c.req.query("path"));
  await runToCompletion(c, sandboxId, { type: "file", op: "delete", path });
  return c.json({ path, deleted: true });
});

compatRouter.all("/file", (c) => {
  throw new ApiError(405, ErrorCode.METHOD_NOT_ALLOWED, `Method ${c.req.method} is not allowed on /file; use PUT, GET or DELETE`);
});
compatRouter.all("/run", (c) => {
  throw new ApiError(405, ErrorCode.METHOD_NOT_ALLOWED, `Method ${c.req.method} is not allowed on /run; use POST with {"command": "..."}`);
});
