/** Reads a job's `GET /v1/jobs/{id}/logs` event stream, as a browser's EventSource would. */
import { expect } from "vitest";
import { z } from "zod";

export interface LogEvent {
  event: string;
  id?: string;
  data: unknown;
}

const OutputData = z.object({ text: z.string() });

/** Reads events from an SSE response until `stopAt` returns true or the stream ends. */
export async function readEvents(response: Response, stopAt: (events: LogEvent[]) => boolean = () => false): Promise<LogEvent[]> {
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const reader = response.body?.getReader();
  if (!reader) throw new Error("no body");
  const decoder = new TextDecoder();
  const events: LogEvent[] = [];
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
      );
      if (fields.event) events.push({ event: fields.event, id: fields.id, data: JSON.parse(fields.data ?? "null") });
      end = buffer.indexOf("\n\n");
    }
    if (stopAt(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

/** The text of one stream's output events, in order. */
export function textOf(events: LogEvent[], stream: "stdout" | "stderr"): string {
  return events
    .filter((event) => event.event === stream)
    .map((event) => OutputData.parse(event.data).text)
    .join("");
}
