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

export class CappedOutput {
  private readonly head: Uint8Array;
  private headLength = 0;
  /** A ring buffer holding the most recent bytes once the head is full. */
  private readonly tail: Uint8Array;
  private tailStart = 0;
  private tailLength = 0;
  private total = 0;

  constructor(limit: number) {
    const headSize = Math.ceil(limit / 2);
    this.head = new Uint8Array(headSize);
    this.tail = new Uint8Array(limit - headSize);
  }

  push(chunk: Uint8Array | string): void {
    let bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    this.total += bytes.byteLength;
    const headRoom = this.head.byteLength - this.headLength;
    if (headRoom > 0) {
      const part = bytes.subarray(0, headRoom);
      this.head.set(part, this.headLength);
      this.headLength += part.byteLength;
      bytes = bytes.subarray(part.byteLength);
    }
    this.pushTail(bytes);
  }

  result(): CapturedOutput {
    const tail = this.orderedTail();
    const droppedBytes = this.total - this.headLength - tail.byteLength;
    const marker = droppedBytes > 0 ? encoder.encode(`\n[... ${droppedBytes} bytes of output dropped here ...]\n`) : new Uint8Array();
    const bytes = new Uint8Array(this.headLength + marker.byteLength + tail.byteLength);
    bytes.set(this.head.subarray(0, this.headLength), 0);
    bytes.set(marker, this.headLength);
    bytes.set(tail, this.headLength + marker.byteLength);
    return { bytes, totalBytes: this.total, droppedBytes };
  }

  private pushTail(bytes: Uint8Array): void {
    const capacity = this.tail.byteLength;
    if (capacity === 0 || bytes.byteLength === 0) return;
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
    const capacity = this.tail.byteLength;
    const out = new Uint8Array(this.tailLength);
    const first = Math.min(this.tailLength, capacity - this.tailStart);
    out.set(this.tail.subarray(this.tailStart, this.tailStart + first), 0);
    out.set(this.tail.subarray(0, this.tailLength - first), first);
    return out;
  }
}
