// Test-only wrapped binding around the local R2 bucket that enforces what Cloudflare R2 does and
// miniflare does not: at most one write per second to the same key (R2 answers 429 above that).
// A delete changes the key as a put does, so it counts as a write too. Plain JavaScript because
// miniflare loads it as-is.
const lastWriteAt = new Map();
/** test/worker/workspacePersistence.test.ts: a put of a workspace snapshot fails while this object exists. */
const REFUSE_PUT_PREFIX = "test-hooks/refuse-put/";

function noteWrite(key) {
  const now = Date.now();
  const previous = lastWriteAt.get(key);
  if (previous !== undefined && now - previous < 1000) {
    throw new Error(`R2 write failed: 429 Too Many Requests (key "${key}" written ${now - previous} ms ago; limit is 1 write/second/key)`);
  }
  lastWriteAt.set(key, now);
}

export default function strictR2(env) {
  const inner = env.INNER;
  return {
    head: (key) => inner.head(key),
    get: (key, options) => inner.get(key, options),
    list: (options) => inner.list(options),
    async put(key, value, options) {
      noteWrite(key);
      // A test makes a workspace save fail as an R2 outage would by storing this marker object.
      if (key.startsWith("workspaces/") && (await inner.head(`${REFUSE_PUT_PREFIX}${key}`))) {
        // Read to its end first, as an upload that failed at the end would be: its sender sees only the refusal.
        if (value instanceof ReadableStream) await value.pipeTo(new WritableStream());
        throw new Error(`R2 put failed: 503 Service Unavailable (test marker ${REFUSE_PUT_PREFIX}${key})`);
      }
      return inner.put(key, value, options);
    },
    async delete(keys) {
      for (const key of Array.isArray(keys) ? keys : [keys]) noteWrite(key);
      return inner.delete(keys);
    },
    createMultipartUpload: (key, options) => inner.createMultipartUpload(key, options),
    resumeMultipartUpload: (key, uploadId) => inner.resumeMultipartUpload(key, uploadId),
  };
}
