/** Progress lines, stamped with seconds since the benchmark started. */
const started = performance.now();

export function progress(line: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
}
