// Test-only wrapped binding around the local KV namespace that enforces what Cloudflare KV does
// and miniflare does not: at most one write per second to the same key (a second one fails).
// Plain JavaScript because miniflare loads it as-is.
const lastWriteAt = new Map();

export default function strictKv(env) {
  const inner = env.INNER;
  return {
    get: (key, options) => inner.get(key, options),
    getWithMetadata: (key, options) => inner.getWithMetadata(key, options),
    list: (options) => inner.list(options),
    delete: (key) => inner.delete(key),
    async put(key, value, options) {
      const now = Date.now();
      const previous = lastWriteAt.get(key);
      if (previous !== undefined && now - previous < 1000) {
        throw new Error(
          `KV PUT failed: 429 Too Many Requests (key "${key}" written ${now - previous} ms ago; limit is 1 write/second/key)`,
        );
      }
      lastWriteAt.set(key, now);
      return inner.put(key, value, options);
    },
  };
}
