/**
 * Following a job's live log (`GET /v1/jobs/{id}/logs`, Server-Sent Events) to its end. The API
 * ends each stream after 55 s, and a restart of the service breaks it: the follower reconnects
 * with the last event's id (Last-Event-ID), which resumes exactly, until the `status` event.
 */
import { LogGapData, LogStatusData, LogTextData } from "../schemas/api";
import { UnexpectedResponseError } from "./errors";
import type { Http } from "./http";
import { Backoff, type RetryPolicy, sleep } from "./retry";
import { readSse, type SseEvent } from "./sse";

export type LogEvent = { type: "stdout" | "stderr"; text: string } | ({ type: "gap" } & LogGapData) | ({ type: "status" } & LogStatusData);

/** What the API's `retry:` field asks for before reconnecting a stream that ended with nothing new. */
const RECONNECT_DELAY_MS = 1_000;

export async function* followLogs(http: Http, jobId: string, retry: RetryPolicy, signal?: AbortSignal): AsyncGenerator<LogEvent> {
  const backoff = new Backoff(retry, signal);
  let lastEventId: string | undefined;
  for (;;) {
    let body: ReadableStream<Uint8Array>;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (lastEventId) headers["last-event-id"] = lastEventId;
      const response = await http.send(`/v1/jobs/${encodeURIComponent(jobId)}/logs`, { headers, signal });
      if (!response.body) throw new UnexpectedResponseError(`logs of ${jobId}`, "no body");
      body = response.body;
    } catch (error) {
      await backoff.failed(error);
      continue;
    }
    backoff.succeeded();
    let delivered = false;
    try {
      for await (const raw of readSse(body)) {
        const event = parseEvent(raw, jobId);
        if (!event) continue;
        if (raw.id) lastEventId = raw.id;
        delivered = true;
        yield event;
        if (event.type === "status") return;
      }
    } catch (error) {
      // A stream cut by a restart: reconnect where it stood, unless the caller gave up.
      if (signal?.aborted || error instanceof UnexpectedResponseError) throw error;
    }
    if (!delivered) await sleep(RECONNECT_DELAY_MS, signal);
  }
}

function parseEvent(raw: SseEvent, jobId: string): LogEvent | undefined {
  const what = `log event ${raw.event} of ${jobId}`;
  let data: unknown;
  try {
    data = JSON.parse(raw.data);
  } catch {
    throw new UnexpectedResponseError(what, `not JSON: ${raw.data.slice(0, 200)}`);
  }
  const parse = <T>(result: { success: true; data: T } | { success: false; error: { message: string } }): T => {
    if (!result.success) throw new UnexpectedResponseError(what, result.error.message);
    return result.data;
  };
  switch (raw.event) {
    case "stdout":
    case "stderr":
      return { type: raw.event, ...parse(LogTextData.safeParse(data)) };
    case "gap":
      return { type: "gap", ...parse(LogGapData.safeParse(data)) };
    case "status":
      return { type: "status", ...parse(LogStatusData.safeParse(data)) };
    default:
      // Event types this client does not know yet are skipped, as EventSource would.
      return undefined;
  }
}
