// Test-only wrapped binding around the local job queue producer that enforces Cloudflare
// Queues' limits, which miniflare does not: 128 KB per message, and per sendBatch call at most
// 100 messages and 256 KB. Plain JavaScript because miniflare loads it as-is.
const MAX_MESSAGE_BYTES = 128 * 1024;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 256 * 1024;

function sizeOf(body) {
  return new TextEncoder().encode(JSON.stringify(body)).byteLength;
}

export default function strictQueue(env) {
  const inner = env.INNER;
  return {
    async send(body, options) {
      const size = sizeOf(body);
      if (size > MAX_MESSAGE_BYTES) throw new Error(`Queue send failed: message is ${size} bytes; the limit is 128 KB`);
      return inner.send(body, options);
    },
    async sendBatch(messages, options) {
      const list = [...messages];
      const total = list.reduce((sum, message) => sum + sizeOf(message.body), 0);
      if (list.length > MAX_BATCH_MESSAGES) throw new Error(`Queue sendBatch failed: ${list.length} messages; the limit is 100`);
      if (total > MAX_BATCH_BYTES) throw new Error(`Queue sendBatch failed: ${total} bytes; the limit is 256 KB`);
      for (const message of list) {
        if (sizeOf(message.body) > MAX_MESSAGE_BYTES) throw new Error("Queue sendBatch failed: a message is over 128 KB");
      }
      return inner.sendBatch(list, options);
    },
  };
}
