/**
 * Histogram buckets for job durations and queue waits, as Prometheus keeps them (upper bounds in
 * seconds), and percentiles estimated from bucket counts by linear interpolation inside the
 * bucket, as Prometheus' histogram_quantile does.
 */

/** Upper bounds in seconds; a last, unbounded bucket follows. */
export const BUCKET_BOUNDS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600];

/** The bucket a value falls in: the first whose bound it does not exceed (the last for anything larger). */
export function bucketIndex(seconds: number): number {
  const index = BUCKET_BOUNDS_SECONDS.findIndex((bound) => seconds <= bound);
  return index === -1 ? BUCKET_BOUNDS_SECONDS.length : index;
}

/** The q-quantile (0-1) of the counts per bucket index; null when there are none. */
export function quantile(q: number, counts: Map<number, number>): number | null {
  const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let index = 0; index <= BUCKET_BOUNDS_SECONDS.length; index++) {
    const count = counts.get(index) ?? 0;
    if (count > 0 && seen + count >= rank) {
      const lower = index === 0 ? 0 : (BUCKET_BOUNDS_SECONDS[index - 1] ?? 0);
      // Past the last bound there is no upper edge: answer that bound, as Prometheus does.
      const upper = BUCKET_BOUNDS_SECONDS[index];
      if (upper === undefined) return lower;
      return lower + (upper - lower) * ((rank - seen) / count);
    }
    seen += count;
  }
  return BUCKET_BOUNDS_SECONDS[BUCKET_BOUNDS_SECONDS.length - 1] ?? null;
}
