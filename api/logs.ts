/**
 * `GET /v1/jobs/{id}/logs`: the job's output as Server-Sent Events. A running job's output comes
 * live from its sandbox's coordinator as the command writes it; a finished job's from storage;
 * then a `status` event, and the stream ends. Each output event's `id` is where stdout and stderr
 * stand after it (`{stdout bytes}.{stderr bytes}`): reconnecting with that Last-Event-ID (or
 * `?from=`) resumes exactly. A stream ends itself after LOG_STREAM_MAX_MS (a Worker is not told
 * reliably that its client left); clients reconnect, as EventSource does by itself.
 */
import { Hono } from "hono";
import { z } from "zod";
import { formatEvent, parseOffsets } from "../coordinator/liveLog";
import { coordinatorFor } from "../coordinator/stubs";
import { keptLayout } from "../sandbox/cappedOutput";
import type { LogStatusData } from "../schemas/api";
import { isTerminal, type JobRecord, type OutputOffsets } from "../schemas/job";
import { r2Keys, sandboxKey } from "../storage/layout";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode } from "./errors";
import { parseJobId } from "./jobs";
import { ErrorBody } from "./openapi";

const LOG_STREAM_MAX_MS = 55_000;
/** Stored output goes out in events of at most this many bytes. */
const STORED_EVENT_BYTES = 64 * 1024;

export const logsRouter = new Hono<ApiEnv>();

logsRouter.get("/v1/jobs/:jobId/logs", async (c) => {
  const jobId = parseJobId(c.req.param("jobId"));
  const record = await c.var.jobs.get(jobId);
  const typed = c.req.query("from");
  // Typed by a person, so a slip is said; a Last-Event-ID is the stream's own and always reads.
  if (typed !== undefined && !/^\d+\.\d+$/.test(typed)) {
    throw new ApiError(
      400,
      ErrorCode.INVALID_REQUEST,
      `from must be where to resume as <stdout bytes>.<stderr bytes>, an event's id such as 120.0; got ${JSON.stringify(typed.slice(0, 40))}`,
    );
  }
  const from = parseOffsets(c.req.header("last-event-id") ?? typed);
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  c.executionCtx.waitUntil(
    streamLogs(c.env, c.var.jobs, record, from, writable.getWriter()).catch((error: unknown) => {
      // A client that leaves cancels the stream (the write fails without an error): nothing to report.
      if (error instanceof Error) console.warn(`job ${jobId}: log stream ended early`, error);
    }),
  );
  return new Response(readable, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
});

async function streamLogs(
  env: Env,
  jobs: ApiEnv["Variables"]["jobs"],
  first: JobRecord,
  from: OutputOffsets,
  writer: WritableStreamDefaultWriter<Uint8Array>,
): Promise<void> {
  try {
    await writer.write(new TextEncoder().encode("retry: 1000\n\n"));
    let position = from;
    if (!isTerminal(first.status)) {
      const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(first.tenant, first.sandboxId));
      const live = await coordinator.followLogs(first.id, from, LOG_STREAM_MAX_MS);
      if (live) position = await relay(live, writer, position);
    }
    const latest = isTerminal(first.status) ? first : await jobs.get(first.id);
    if (!isTerminal(latest.status)) return;
    position = await sendStored(env.JOB_OUTPUT, latest, "stdout", position, writer);
    await sendStored(env.JOB_OUTPUT, latest, "stderr", position, writer);
    const status: LogStatusData = { status: latest.status, exitCode: latest.exitCode, error: latest.error };
    await writer.write(formatEvent("status", status));
  } finally {
    await writer.close().catch(() => undefined);
  }
}

const ID_LINE = /^id: (\d+)\.(\d+)$/gm;

/** Passes live events on, noting the last position they reached. */
async function relay(
  live: ReadableStream<Uint8Array>,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  from: OutputOffsets,
): Promise<OutputOffsets> {
  let position = from;
  let carry = "";
  const decoder = new TextDecoder();
  for await (const chunk of live) {
    await writer.write(chunk);
    // Keep the end of the text: an id line may be split between chunks.
    const text = carry + decoder.decode(chunk, { stream: true });
    for (const match of text.matchAll(ID_LINE)) position = { stdout: Number(match[1]), stderr: Number(match[2]) };
    carry = text.slice(-256);
  }
  return position;
}

/** A finished job's stored output of one stream beyond `from`, in events; where the client then stands. */
async function sendStored(
  bucket: R2Bucket,
  record: JobRecord,
  stream: "stdout" | "stderr",
  from: OutputOffsets,
  writer: WritableStreamDefaultWriter<Uint8Array>,
): Promise<OutputOffsets> {
  // Positions count the output's bytes across the job's tries (live events count skipped ones
  // too); the stored output is the last try's, from `base` on, and holds its kept head, the
  // marker line and its kept tail.
  const base = record.storedOutputAt?.[stream] ?? 0;
  const ref = record[stream];
  const size = ref?.size ?? 0;
  const layout = keptLayout(size, ref?.truncated ? ref.droppedBytes : 0);
  if (from[stream] < base) {
    // The output before the last try, which was not stored.
    await writer.write(formatEvent("gap", { stream, droppedBytes: base - from[stream] }, { ...from, [stream]: base }));
  }
  const position = { ...from, [stream]: Math.max(base, from[stream]) };
  if (position[stream] - base >= layout.written) return position;
  let offset = layout.toKept(position[stream] - base);
  if (offset >= size) return position;
  const object = await bucket.get(r2Keys.output(record.tenant, record.id, record.attempts, stream), {
    range: { offset },
  });
  if (!object) return position;
  let at = { ...position };
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  let pending = new Uint8Array(0);
  const flush = async (bytes: Uint8Array, final: boolean) => {
    offset += bytes.byteLength;
    at = { ...at, [stream]: base + layout.toWritten(offset) };
    await writer.write(formatEvent(stream, { text: decoder.decode(bytes, { stream: !final }) }, at));
  };
  for await (const chunk of object.body) {
    const joined = new Uint8Array(pending.byteLength + chunk.byteLength);
    joined.set(pending);
    joined.set(chunk, pending.byteLength);
    pending = joined;
    while (pending.byteLength >= STORED_EVENT_BYTES) {
      await flush(pending.subarray(0, STORED_EVENT_BYTES), false);
      pending = pending.slice(STORED_EVENT_BYTES);
    }
  }
  if (pending.byteLength > 0) await flush(pending, true);
  return at;
}

/** For the OpenAPI document (the route answers an event stream, so it is a plain route). */
export const logsRoute = {
  method: "get" as const,
  path: "/v1/jobs/{jobId}/logs",
  summary:
    "The job's stdout and stderr as Server-Sent Events: live while it runs, stored once it has finished, then a status event; resume with Last-Event-ID",
  request: { params: z.object({ jobId: z.string().openapi({ param: { name: "jobId", in: "path" } }) }) },
  responses: {
    200: { description: "text/event-stream: events stdout, stderr (data {text}), gap, status (data {status, exitCode, error})" },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorBody } } },
  },
};
