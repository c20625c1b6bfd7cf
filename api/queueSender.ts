/**
 * Puts run messages on the job queue within Cloudflare Queues' limits, which local simulation
 * does not enforce: 128 KB per message and, per sendBatch call, 100 messages and 256 KB.
 */
import type { RunMessage } from "../schemas/queueMessages";

/** Cloudflare counts about 100 bytes of metadata against each message's size. */
const MESSAGE_OVERHEAD_BYTES = 100;
export const MAX_MESSAGE_BYTES = 128 * 1024;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 256 * 1024;

export function messageBytes(message: RunMessage): number {
  return new TextEncoder().encode(JSON.stringify(message)).byteLength + MESSAGE_OVERHEAD_BYTES;
}

/** Splits messages into sendBatch calls that each respect the count and byte limits. */
export function packIntoBatches(messages: RunMessage[]): RunMessage[][] {
  const batches: RunMessage[][] = [];
  let current: RunMessage[] = [];
  let currentBytes = 0;
  for (const message of messages) {
    const bytes = messageBytes(message);
    if (bytes > MAX_MESSAGE_BYTES) throw new Error(`Queue message for job ${message.jobId} is ${bytes} bytes; the limit is 128 KB`);
    if (current.length === MAX_BATCH_MESSAGES || currentBytes + bytes > MAX_BATCH_BYTES) {
      batches.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(message);
    currentBytes += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Sends every message; returns the IDs of jobs whose message could not be queued. */
export async function sendRunMessages(queue: Queue, messages: RunMessage[]): Promise<Set<string>> {
  const failed = new Set<string>();
  for (const batch of packIntoBatches(messages)) {
    try {
      if (batch.length === 1 && batch[0]) await queue.send(batch[0], { contentType: "json" });
      else await queue.sendBatch(batch.map((body) => ({ body, contentType: "json" })));
    } catch (error) {
      console.error(`queue send failed for ${batch.length} job(s)`, error);
      for (const message of batch) failed.add(message.jobId);
    }
  }
  return failed;
}
