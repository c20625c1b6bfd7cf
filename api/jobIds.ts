/**
 * Where a submit's job and batch IDs come from. Normally fresh randomness; under an
 * Idempotency-Key, the key's seed (kept by the tenant's directory), so that a retry of a request
 * that died half-way makes exactly the IDs the first try made, and a coordinator that already
 * took one of those jobs ignores it instead of running it again.
 */
import { monotonicFactory, type PRNG, type ULIDFactory, ulid } from "ulid";
import { z } from "zod";

/** The time a submit counts from, and 32 random bytes (hex) its IDs' random parts come from. */
export const IdSeed = z.object({ at: z.number().int().nonnegative(), random: z.string().regex(/^[0-9a-f]{64}$/) });
export type IdSeed = z.infer<typeof IdSeed>;

export interface SubmitIds {
  /** The submit's time: its records' `createdAt`, and the earliest time its IDs carry. */
  now: number;
  /** Job IDs, increasing within this submit (monotonic, as ulid's factory makes them). */
  nextJobId: ULIDFactory;
  batchId: string;
}

/** Fresh IDs without a seed; with one, the same IDs every time for the same sequence of calls. */
export function submitIds(seed?: IdSeed): SubmitIds {
  if (!seed) {
    const now = Date.now();
    return { now, nextJobId: monotonicFactory(), batchId: ulid(now) };
  }
  // 16 bytes for the job IDs' first random part (later ones increment it), 16 for the batch ID.
  return {
    now: seed.at,
    nextJobId: monotonicFactory(bytesAsPrng(seed.random.slice(0, 32))),
    batchId: ulid(seed.at, bytesAsPrng(seed.random.slice(32))),
  };
}

/** A PRNG that replays the given bytes (hex), each as a fraction in [0, 1): a ULID takes 16 draws. */
function bytesAsPrng(bytesHex: string): PRNG {
  const bytes = (bytesHex.match(/../g) ?? []).map((pair) => Number.parseInt(pair, 16));
  let next = 0;
  return () => (bytes[next++ % bytes.length] ?? 0) / 256;
}
