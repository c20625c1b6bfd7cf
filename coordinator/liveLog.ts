/**
 * The output of the job a coordinator is running, as it is written: kept in order across stdout
 * and stderr (the most recent LIVE_LOG_MAX_BYTES of it), and served to followers as
 * Server-Sent Events. Every event's `id` is where the two streams stand after it, as
 * `{stdout bytes}.{stderr bytes}`, so a client that reconnects with that Last-Event-ID resumes
 * exactly. The offsets run on across the job's tries (`retries`) and its attempts: a next attempt
 * starts where the job table last noted the log's end, at a lease renewal or a requeue (after a
 * crash, output written since the last renewal is counted again from there), while the stored
 * output holds only the last try's: `lastTryFrom` says where that try began, so a reconnect after
 * the job ended can be placed in it.
 */
import { Buffer } from "node:buffer";
import type { OutputOffsets } from "../schemas/job";

export type OutputStream = "stdout" | "stderr";

/** Output kept for followers; older output is in the job's stored stdout and stderr once it ends. */
const LIVE_LOG_MAX_BYTES = 4 * 1024 * 1024;

interface Entry {
  stream: OutputStream;
  /** Byte offset in its stream where this chunk starts. */
  offset: number;
  bytes: Uint8Array;
  /** `bytes` after the start of a character the stream's previous chunk ended with: this chunk's text shows it. */
  withCarriedIn: Uint8Array;
  /** Bytes at the end of `withCarriedIn` that begin a character not finished there: a later chunk's text shows them. */
  heldBack: number;
}

/**
 * How many bytes at the end of `bytes` begin a UTF-8 character that is not complete there. Bytes
 * that could never start one are left to the decoder (they read as U+FFFD).
 */
function unfinishedCharacterBytes(bytes: Uint8Array): number {
  for (let at = bytes.byteLength - 1; at >= Math.max(0, bytes.byteLength - 3); at--) {
    const byte = bytes[at] ?? 0;
    if ((byte & 0xc0) === 0x80) continue;
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    const present = bytes.byteLength - at;
    return present < length ? present : 0;
  }
  return 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export function parseOffsets(lastEventId: string | undefined | null): OutputOffsets {
  const match = /^(\d+)\.(\d+)$/.exec(lastEventId ?? "");
  return match ? { stdout: Number(match[1]), stderr: Number(match[2]) } : { stdout: 0, stderr: 0 };
}

export function formatEvent(event: string, data: unknown, id?: OutputOffsets): Uint8Array {
  const idLine = id ? `id: ${id.stdout}.${id.stderr}\n` : "";
  return encoder.encode(`${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export class LiveLog {
  private readonly entries: Entry[] = [];
  private keptBytes = 0;
  private readonly totals: OutputOffsets;
  private tryFrom: OutputOffsets;
  /** Per stream, the start of a character the last chunk left unfinished. */
  private readonly unfinished: Record<OutputStream, Uint8Array> = { stdout: new Uint8Array(), stderr: new Uint8Array() };
  private readonly lastEntry: Record<OutputStream, Entry | undefined> = { stdout: undefined, stderr: undefined };
  private closed = false;
  private readonly listeners = new Set<() => void>();

  /** `start`: where an earlier attempt of the same job left off (its followers' positions stay valid). */
  constructor(start: OutputOffsets = { stdout: 0, stderr: 0 }) {
    this.totals = { ...start };
    this.tryFrom = { ...start };
  }

  /** A try of the command starts: its output, the one stored if it is the last, begins here. */
  tryStarted(): void {
    this.tryFrom = { ...this.totals };
    this.unfinished.stdout = new Uint8Array();
    this.unfinished.stderr = new Uint8Array();
  }

  /** Where the latest try's output begins. */
  get lastTryFrom(): OutputOffsets {
    return { ...this.tryFrom };
  }

  /** Where both streams stand now. */
  get end(): OutputOffsets {
    return { ...this.totals };
  }

  /**
   * Output as it is written, as bytes: offsets count what the command wrote, whatever it is, and
   * text is made only for followers. `skippedBefore` bytes of the stream, never read, came before
   * it (followers get a gap).
   */
  append(stream: OutputStream, bytes: Uint8Array, skippedBefore = 0): void {
    this.totals[stream] += skippedBefore;
    if (skippedBefore > 0) this.unfinished[stream] = new Uint8Array();
    if (bytes.byteLength === 0) {
      if (skippedBefore > 0) this.notify();
      return;
    }
    // One copy, with the unfinished character before it: the caller's buffer may be reused, or hold far more than this piece.
    const carriedIn = this.unfinished[stream].byteLength;
    const withCarriedIn = Buffer.concat([this.unfinished[stream], bytes]);
    const heldBack = unfinishedCharacterBytes(withCarriedIn);
    this.unfinished[stream] = withCarriedIn.subarray(withCarriedIn.byteLength - heldBack);
    const entry = { stream, offset: this.totals[stream], bytes: withCarriedIn.subarray(carriedIn), withCarriedIn, heldBack };
    this.entries.push(entry);
    this.lastEntry[stream] = entry;
    this.totals[stream] += bytes.byteLength;
    this.keptBytes += bytes.byteLength;
    while (this.keptBytes > LIVE_LOG_MAX_BYTES && this.entries.length > 1) {
      const dropped = this.entries.shift();
      this.keptBytes -= dropped?.bytes.byteLength ?? 0;
    }
    this.notify();
  }

  /** The command has ended: followers get what is left, then their stream ends. */
  close(): void {
    this.closed = true;
    this.notify();
  }

  /** One stream's output so far (what is still kept of it). */
  snapshot(stream: OutputStream): Uint8Array {
    const parts = this.entries.filter((entry) => entry.stream === stream).map((entry) => entry.bytes);
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }

  /** The output after `from` as events, then new output as it comes, until the command ends or `untilMs`. */
  follow(from: OutputOffsets, untilMs: number): ReadableStream<Uint8Array> {
    const position: OutputOffsets = { ...from };
    const deadline = Date.now() + untilMs;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const pending = this.eventsAfter(position);
          if (pending.length > 0) {
            for (const chunk of pending) controller.enqueue(chunk);
            return;
          }
          if (this.closed || Date.now() >= deadline) {
            controller.close();
            return;
          }
          await this.changeOrTimeout(deadline - Date.now());
        }
      },
    });
  }

  private eventsAfter(position: OutputOffsets): Uint8Array[] {
    const events: Uint8Array[] = [];
    // Bytes a follower never gets (no longer kept here, or never read from the sandbox) are a gap.
    const gapTo = (stream: OutputStream, offset: number) => {
      if (position[stream] >= offset) return;
      const droppedBytes = offset - position[stream];
      position[stream] = offset;
      // With its id, a reconnect (or the stored output sent after the end) starts past the gap.
      events.push(formatEvent("gap", { stream, droppedBytes }, { ...position }));
    };
    for (const entry of this.entries) {
      const end = entry.offset + entry.bytes.byteLength;
      if (end <= position[entry.stream]) continue;
      gapTo(entry.stream, entry.offset);
      const text = this.textOf(entry, position[entry.stream] - entry.offset);
      position[entry.stream] = end;
      // The id is where this follower now stands in both streams: resuming from it skips nothing.
      events.push(formatEvent(entry.stream, { text }, { ...position }));
    }
    for (const stream of ["stdout", "stderr"] as const) gapTo(stream, this.totals[stream]);
    return events;
  }

  /**
   * An entry's text from byte `from` on: a character split between chunks shows whole, in the
   * later one's text (once the command has ended, an unfinished last one shows as U+FFFD).
   */
  private textOf(entry: Entry, from: number): string {
    const heldBack = this.closed && this.lastEntry[entry.stream] === entry ? 0 : entry.heldBack;
    const text = from > 0 ? entry.bytes.subarray(from) : entry.withCarriedIn;
    return decoder.decode(text.subarray(0, Math.max(0, text.byteLength - heldBack)));
  }

  private changeOrTimeout(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.listeners.add(done);
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
