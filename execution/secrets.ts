/**
 * A job's secrets: read from its tenant's directory and decrypted for the run only (they reach
 * the command as environment variables, never the record), and masked as `***` in everything
 * the job's output becomes: live log chunks (a value split across chunks too) and stored output.
 */
import { openSecret } from "../access/secretCipher";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { readConfig } from "../config";
import { droppedMarker } from "../sandbox/cappedOutput";
import type { ExecRequest } from "../sandbox/port";
import { MIN_SECRET_BYTES } from "../schemas/secrets";

/** Decrypted values by name; throws SecretUnavailableError naming the first it cannot give. */
export type SecretSource = (names: string[]) => Promise<Record<string, string>>;

export class SecretUnavailableError extends Error {
  constructor(readonly secretName: string) {
    super(`Secret ${secretName} does not exist for this tenant (or can no longer be decrypted); set it with PUT /v1/secrets/${secretName}`);
    this.name = "SecretUnavailableError";
  }
}

export function secretSourceFor(env: Env, tenant: string): SecretSource {
  return async (names) => {
    if (names.length === 0) return {};
    const keys = readConfig(env).secretsKeys;
    const stored = new Map(
      (await tenantDirectoryFor(env.TENANT_DIRECTORY, tenant).readSecrets(names)).map((row) => [row.name, row.sealed]),
    );
    const values: Record<string, string> = {};
    for (const name of names) {
      const sealed = stored.get(name);
      const value = sealed && (await openSecret(keys, tenant, name, sealed));
      if (value === undefined) throw new SecretUnavailableError(name);
      values[name] = value;
    }
    return values;
  };
}

export const MASK = "***";
/** A character a gap split, as each side decodes it apart (U+FFFD), at the end or the start of a text. */
const SPLIT_AT_END = /\uFFFD+$/;
const SPLIT_AT_START = /^\uFFFD+/;
const encoder = new TextEncoder();
const maskBytes = encoder.encode(MASK);

/** Replaces every secret value in a job's output with `***`. */
export class SecretMasker {
  private readonly values: string[];
  private readonly encoded: Uint8Array[];

  constructor(values: string[]) {
    // Longest first, so a value containing another is masked whole.
    this.values = [...new Set(values.filter((value) => value.length > 0))].sort((a, b) => b.length - a.length);
    this.encoded = this.values.map((value) => encoder.encode(value));
  }

  get active(): boolean {
    return this.values.length > 0;
  }

  maskText(text: string): string {
    let masked = text;
    for (const value of this.values) masked = masked.split(value).join(MASK);
    return masked;
  }

  /**
   * A live stream's masker: it holds back a chunk's end while it could be the start of a value
   * (released with the next chunk, or by `flush`), so a value split across chunks is masked too.
   */
  live(emit: (text: string) => void): { push(text: string): void; flush(): void; skip(): void } {
    let pending = "";
    let afterSkip = false;
    return {
      push: (text) => {
        let masked = this.maskText(pending + text);
        // The first text after skipped bytes may begin with the end of a value cut by the skip.
        if (afterSkip && masked.length > 0) {
          masked = this.cutPartialText(masked, "start");
          afterSkip = false;
        }
        const held = this.heldBack(masked);
        pending = masked.slice(masked.length - held);
        if (masked.length > held) emit(masked.slice(0, masked.length - held));
      },
      flush: () => {
        if (pending.length > 0) emit(pending);
        pending = "";
      },
      // Bytes are skipped here: what was held back is a value's start cut by the skip, masked as in stored output.
      skip: () => {
        if (pending.length > 0) emit(this.cutPartialText(pending, "end"));
        pending = "";
        afterSkip = true;
      },
    };
  }

  /**
   * Stored output (head, a drop marker, tail when it was over its cap): every value masked, and
   * where the middle was cut out, a value's start ending the head or its end starting the tail.
   */
  maskStored(bytes: Uint8Array, droppedBytes: number): Uint8Array {
    if (!this.active) return bytes;
    if (droppedBytes === 0) return this.maskAll(bytes);
    const marker = droppedMarker(droppedBytes);
    const at = indexOf(bytes, marker, 0);
    if (at < 0) return this.maskAll(bytes);
    const head = this.cutPartial(this.maskAll(bytes.subarray(0, at)), "end");
    const tail = this.cutPartial(this.maskAll(bytes.subarray(at + marker.byteLength)), "start");
    return concat([head, marker, tail]);
  }

  /** How many characters at the end of `text` to hold back: a value's start, and a split character after one. */
  private heldBack(text: string): number {
    const start = this.valueStartAtEnd(text);
    if (start > 0) return start;
    // Before a gap the head is decoded apart, so a character the gap split ends it as U+FFFD.
    const split = SPLIT_AT_END.exec(text)?.[0].length ?? 0;
    const beforeSplit = split > 0 ? this.valueStartAtEnd(text.slice(0, text.length - split)) : 0;
    return beforeSplit > 0 ? beforeSplit + split : 0;
  }

  /** How many characters at the end of `text` could begin a value. */
  private valueStartAtEnd(text: string): number {
    let longest = 0;
    for (const value of this.values) {
      for (let length = Math.min(value.length - 1, text.length); length > longest; length--) {
        if (text.endsWith(value.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }

  private maskAll(bytes: Uint8Array): Uint8Array {
    let current = bytes;
    for (const value of this.encoded) {
      const parts: Uint8Array[] = [];
      let from = 0;
      for (let at = indexOf(current, value, 0); at >= 0; at = indexOf(current, value, from)) {
        parts.push(current.subarray(from, at), maskBytes);
        from = at + value.byteLength;
      }
      if (from === 0) continue;
      parts.push(current.subarray(from));
      current = concat(parts);
    }
    return current;
  }

  private cutPartialText(text: string, side: "start" | "end"): string {
    const cut = (piece: string) => new TextDecoder().decode(this.cutPartial(encoder.encode(piece), side));
    const whole = cut(text);
    if (whole !== text) return whole;
    // Live text is decoded on each side of a cut apart, so a character the cut split is U+FFFD on
    // both sides: a value's piece then lies next to it, and the mask covers that character too.
    const split = (side === "end" ? SPLIT_AT_END : SPLIT_AT_START).exec(text)?.[0];
    if (!split) return text;
    const inner = side === "end" ? text.slice(0, text.length - split.length) : text.slice(split.length);
    const masked = cut(inner);
    return masked === inner ? text : masked;
  }

  /** Masks a piece of a value left at the cut: at least MIN_SECRET_BYTES of it, or all of a shorter one. */
  private cutPartial(bytes: Uint8Array, side: "start" | "end"): Uint8Array {
    for (const value of this.encoded) {
      for (let length = value.byteLength - 1; length >= Math.min(MIN_SECRET_BYTES, value.byteLength - 1) && length > 0; length--) {
        const piece = side === "end" ? value.subarray(0, length) : value.subarray(value.byteLength - length);
        const at = side === "end" ? bytes.byteLength - length : 0;
        if (at >= 0 && startsWithAt(bytes, piece, at)) {
          return side === "end" ? concat([bytes.subarray(0, at), maskBytes]) : concat([maskBytes, bytes.subarray(length)]);
        }
      }
    }
    return bytes;
  }
}

function startsWithAt(bytes: Uint8Array, piece: Uint8Array, at: number): boolean {
  if (at + piece.byteLength > bytes.byteLength) return false;
  for (let i = 0; i < piece.byteLength; i++) if (bytes[at + i] !== piece[i]) return false;
  return true;
}

function indexOf(bytes: Uint8Array, piece: Uint8Array, from: number): number {
  const first = piece[0];
  if (first === undefined) return -1;
  for (let at = bytes.indexOf(first, from); at >= 0 && at + piece.byteLength <= bytes.byteLength; at = bytes.indexOf(first, at + 1)) {
    if (startsWithAt(bytes, piece, at)) return at;
  }
  return -1;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

type OutputListener = NonNullable<ExecRequest["onOutput"]>;

/** The job's secrets for its run, or the error that fails it when one is missing. */
export async function loadSecrets(
  source: SecretSource | undefined,
  names: string[],
): Promise<{ values: Record<string, string>; masker: SecretMasker } | { error: { code: string; message: string } }> {
  if (names.length === 0) return { values: {}, masker: new SecretMasker([]) };
  try {
    if (!source) throw new SecretUnavailableError(names[0] ?? "");
    const values = await source(names);
    return { values, masker: new SecretMasker(Object.values(values)) };
  } catch (error) {
    if (error instanceof SecretUnavailableError) return { error: { code: "SECRET_NOT_FOUND", message: error.message } };
    throw error;
  }
}

/**
 * Live output through the masker; `flush` releases what was held back once the command has ended.
 * Masking works on text, so with secrets each stream is decoded as it comes (a character split
 * between pieces joined; one cut by skipped bytes reads as U+FFFD) and its masked text encoded again.
 */
export function maskedListener(masker: SecretMasker, listener: OutputListener | undefined): { onOutput?: OutputListener; flush(): void } {
  if (!listener || !masker.active) return { onOutput: listener, flush: () => undefined };
  const maskedStream = (stream: "stdout" | "stderr") => ({
    decoder: new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }),
    masked: masker.live((text) => listener(stream, encoder.encode(text))),
  });
  const streams = { stdout: maskedStream("stdout"), stderr: maskedStream("stderr") };
  return {
    onOutput: (stream, bytes, skippedBefore) => {
      const { decoder, masked } = streams[stream];
      // What came before the skipped bytes goes out first, so the skip lands where it was.
      if (skippedBefore) {
        masked.push(decoder.decode());
        masked.skip();
        listener(stream, new Uint8Array(), skippedBefore);
      }
      masked.push(decoder.decode(bytes, { stream: true }));
    },
    flush: () => {
      for (const { decoder, masked } of [streams.stdout, streams.stderr]) {
        masked.push(decoder.decode());
        masked.flush();
      }
    },
  };
}
