/** Timing helpers: percentiles, a worker pool that times each task, and rates. */

export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export interface PoolRun {
  /** Each task's duration in ms. */
  durations: number[];
  /** Wall time of the whole run in ms. */
  elapsedMs: number;
}

/** Runs `count` tasks with `concurrency` workers (worker i always has the index i: its own sandbox). */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number, worker: number) => Promise<void>,
): Promise<PoolRun> {
  const durations: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async (_, worker) => {
      while (next < count) {
        const index = next++;
        const taskStarted = performance.now();
        await task(index, worker);
        durations.push(performance.now() - taskStarted);
      }
    }),
  );
  return { durations, elapsedMs: performance.now() - started };
}

export function perSecond(run: PoolRun): number {
  return run.durations.length / (run.elapsedMs / 1000);
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
