/**
 * Keeps a command's output within a cap without losing its end: the first half of the cap and
 * the last half, with a marker between them saying how much was dropped. In CI the tail (the
 * summary, the failing test) matters more than the middle of a long log.
 */

export interface CapturedOutput {
  /** What is kept: head, the marker line when something was dropped, and tail. */
  bytes: Uint8Array;
  /** Bytes the command wrote in all. */
  totalBytes: number;
  /** Bytes left out between head and tail. */
  droppedBytes: number;
}

const encoder = new TextEncoder();

/** The line that stands for `droppedBytes` left out between the kept head and tail. */
export function droppedMarker(droppedBytes: number): Uint8Array {
  return encoder.encode(`\n[... ${droppedBytes} bytes of output dropped here ...]\n`);
}

/** The head is the first half of what a cap keeps. */
function headSizeOf(limit: number): number {
  return Math.ceil(limit / 2);
}

/**
 * Where offsets in what the command wrote fall in a kept output of `size` bytes with
 * `droppedBytes` left out (head, marker, tail), and back.
 */
export function keptLayout(size: number, droppedBytes: number) {
  const markerBytes = droppedBytes > 0 ? droppedMarker(droppedBytes).byteLength : 0;
  const head = droppedBytes > 0 ? headSizeOf(size - markerBytes) : size;
  return {
    /** The command's bytes in all. */
    written: size - markerBytes + droppedBytes,
    /** A written offset as a kept one: inside the dropped middle, the marker's start. */
    toKept: (at: number) => (at <= head ? at : at < head + droppedBytes ? head : at - droppedBytes + markerBytes),
    /** A kept offset as a written one: inside the marker, the marker's start. */
    toWritten: (offset: number) => (offset <= head ? offset : offset < head + markerBytes ? head : offset - markerBytes + droppedBytes),
  };
}

export class CappedOutput {
  private readonly headSize: number;
  /**
   * The first `headSize` bytes, in a buffer that grows (doubling, up to `headSize`) as output
   * arrives: most commands write little or nothing, and zeroing the whole cap for every command
   * cost the runner's thread more than anything else it did.
   */
  private head = new Uint8Array(0);
  private headLength = 0;
  readonly tailSize: number;
  /** A ring buffer holding the most recent bytes once the head is full; allocated on first use. */
  private tail: Uint8Array | undefined;
  private tailStart = 0;
  private tailLength = 0;
  private total = 0;

  constructor(limit: number) {
    this.headSize = headSizeOf(limit);
    this.tailSize = limit - this.headSize;
  }

  push(chunk: Uint8Array | string): void {
    let bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    this.total += bytes.byteLength;
    const headRoom = this.headSize - this.headLength;
    if (headRoom > 0 && bytes.byteLength > 0) {
      const part = bytes.subarray(0, headRoom);
      this.reserveHead(this.headLength + part.byteLength);
      this.head.set(part, this.headLength);
      this.headLength += part.byteLength;
      bytes = bytes.subarray(part.byteLength);
    }
    this.pushTail(bytes);
  }

  /** Bytes the head still takes; once it is full, only the last `tailSize` bytes of the rest survive. */
  headRoom(): number {
    return this.headSize - this.headLength;
  }

  /** Counts bytes skipped unread (past a full head, before the last `tailSize`) as written and dropped. */
  skip(count: number): void {
    this.total += count;
  }

  result(): CapturedOutput {
    const tail = this.orderedTail();
    const droppedBytes = this.total - this.headLength - tail.byteLength;
    const marker = droppedBytes > 0 ? droppedMarker(droppedBytes) : new Uint8Array();
    const bytes = new Uint8Array(this.headLength + marker.byteLength + tail.byteLength);
    bytes.set(this.head.subarray(0, this.headLength), 0);
    bytes.set(marker, this.headLength);
    bytes.set(tail, this.headLength + marker.byteLength);
    return { bytes, totalBytes: this.total, droppedBytes };
  }

  private reserveHead(needed: number): void {
    if (needed <= this.head.byteLength) return;
    const grown = new Uint8Array(Math.min(this.headSize, Math.max(needed, 2 * this.head.byteLength, 4096)));
    grown.set(this.head.subarray(0, this.headLength));
    this.head = grown;
  }

  private pushTail(bytes: Uint8Array): void {
    const capacity = this.tailSize;
    if (capacity === 0 || bytes.byteLength === 0) return;
    this.tail ??= new Uint8Array(capacity);
    // Only the last `capacity` bytes of a large chunk can survive.
    const kept = bytes.byteLength > capacity ? bytes.subarray(bytes.byteLength - capacity) : bytes;
    // Write at the ring's end, wrapping once at most; then drop the oldest bytes beyond capacity.
    const end = (this.tailStart + this.tailLength) % capacity;
    const first = Math.min(kept.byteLength, capacity - end);
    this.tail.set(kept.subarray(0, first), end);
    this.tail.set(kept.subarray(first), 0);
    const length = this.tailLength + kept.byteLength;
    if (length > capacity) this.tailStart = (this.tailStart + length - capacity) % capacity;
    this.tailLength = Math.min(length, capacity);
  }

  private orderedTail(): Uint8Array {
    if (this.tail === undefined) return new Uint8Array();
    const capacity = this.tail.byteLength;
    const out = new Uint8Array(this.tailLength);
    const first = Math.min(this.tailLength, capacity - this.tailStart);
    out.set(this.tail.subarray(this.tailStart, this.tailStart + first), 0);
    out.set(this.tail.subarray(0, this.tailLength - first), first);
    return out;
  }
}
