/**
 * The job pipeline end to end through the API (submit, queue, coordinator, Sandbox SDK, local
 * host): latency one at a time, throughput and submit latency at concurrency, and head-of-line
 * blocking between sandboxes.
 */
import { BatchView } from "../schemas/job";
import { awaitFinished, BenchApiError, cancelJob, readJob, runJob, submitJob } from "./apiClient";
import { type PoolRun, runPool, sleep } from "./stats";

const TRIVIAL = { command: "true" };

export async function warmUp(apiUrl: string, sandboxes: number): Promise<void> {
  await runPool(sandboxes * 2, sandboxes, async (_, worker) => void (await runJob(apiUrl, `bench-tp-${worker}`, TRIVIAL)));
  await runJob(apiUrl, "bench-latency", TRIVIAL);
}

/** Trivial jobs one at a time in one sandbox: submit until the finished record is readable. */
export function endToEndLatency(apiUrl: string, samples: number): Promise<PoolRun> {
  return runPool(samples, 1, async () => void (await runJob(apiUrl, "bench-latency", TRIVIAL)));
}

export interface ThroughputRun {
  jobs: PoolRun;
  /** The submit call alone, timed inside each job of the run (so while the consumer works). */
  submits: number[];
  /** A 404 sent beside each submit: the floor under the same load. */
  busyNotFounds: number[];
}

async function notFound(apiUrl: string): Promise<void> {
  const response = await fetch(`${apiUrl}/v1/bench-no-such-route`);
  await response.body?.cancel();
}

/** `count` trivial jobs, worker i always in sandbox bench-tp-i. */
export async function throughput(apiUrl: string, count: number, concurrency: number): Promise<ThroughputRun> {
  const submits: number[] = [];
  const busyNotFounds: number[] = [];
  const jobs = await runPool(count, concurrency, async (_, worker) => {
    const started = performance.now();
    // The floor's 404 goes out beside the submit: the same moment, and no time added to the job.
    const [submitted] = await Promise.all([
      submitJob(apiUrl, `bench-tp-${worker}`, TRIVIAL).finally(() => submits.push(performance.now() - started)),
      notFound(apiUrl).finally(() => busyNotFounds.push(performance.now() - started)),
    ]);
    const finished = await awaitFinished(apiUrl, submitted.id);
    if (finished.status !== "succeeded") throw new BenchApiError(`throughput job ${finished.id} ended ${finished.status}`);
  });
  return { jobs, submits, busyNotFounds };
}

export interface AuthRun {
  anonymous: number[];
  withKey: number[];
}

/**
 * Submit latency one at a time with an API key, beside the same submit without one (the local
 * stack's anonymous tenant): alternated, so both see the same load. The jobs run meanwhile.
 */
export async function submitLatencyWithKey(apiUrl: string, apiKey: string, samples: number): Promise<AuthRun> {
  const run: AuthRun = { anonymous: [], withKey: [] };
  for (let i = 0; i < samples; i++) {
    for (const [key, into] of [
      [undefined, run.anonymous],
      [apiKey, run.withKey],
    ] as const) {
      const started = performance.now();
      await submitJob(apiUrl, "bench-auth", TRIVIAL, key);
      into.push(performance.now() - started);
    }
  }
  return run;
}

/**
 * The floor of a submit: a request the Worker answers without touching storage (an unknown route's
 * 404), through the same `wrangler dev` at the same concurrency.
 */
export function requestFloor(apiUrl: string, count: number, concurrency: number): Promise<PoolRun> {
  return runPool(count, concurrency, () => notFound(apiUrl));
}

/** Sandbox B's trivial jobs, one at a time, with nothing else running: the head-of-line floor. */
export async function headOfLineFloor(apiUrl: string, samples: number): Promise<PoolRun> {
  // B's first job starts its container: not part of either figure.
  await runJob(apiUrl, "bench-hol-b", TRIVIAL);
  return runPool(samples, 1, async () => void (await runJob(apiUrl, "bench-hol-b", TRIVIAL)));
}

/** Sandbox B's trivial jobs, one at a time, while sandbox A runs `sleep 60`; A is cancelled afterwards. */
export async function headOfLine(apiUrl: string, samples: number): Promise<PoolRun> {
  const blocker = await submitJob(apiUrl, "bench-hol-a", { command: "sleep 60", timeoutMs: 120_000 });
  const deadline = Date.now() + 30_000;
  while ((await readJob(apiUrl, blocker.id)).status !== "running") {
    if (Date.now() > deadline) throw new BenchApiError(`sandbox A's sleep 60 did not start within 30 s`);
    await sleep(50);
  }
  try {
    const run = await runPool(samples, 1, async () => void (await runJob(apiUrl, "bench-hol-b", TRIVIAL)));
    if ((await readJob(apiUrl, blocker.id)).status !== "running") throw new BenchApiError("sandbox A's sleep 60 ended before B's jobs did");
    return run;
  } finally {
    await cancelJob(apiUrl, blocker.id);
    await awaitFinished(apiUrl, blocker.id, 60_000);
  }
}

/**
 * One 100-job batch of trivial jobs across 100 sandboxes nobody used yet: the time until it is
 * accepted (202), while those sandboxes' containers start; then waits until every job ended.
 */
export async function batchAccept(apiUrl: string, sandboxes = 100): Promise<number> {
  const jobs = Array.from({ length: sandboxes }, (_, index) => ({ sandboxId: `bench-batch-${index}`, job: { type: "run", ...TRIVIAL } }));
  const started = performance.now();
  const response = await fetch(`${apiUrl}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jobs }),
  });
  const text = await response.text();
  const acceptedMs = performance.now() - started;
  if (response.status !== 202) throw new BenchApiError(`batch submit answered ${response.status}: ${text.slice(0, 500)}`);
  const { batchId } = BatchView.parse(JSON.parse(text));
  const deadline = Date.now() + 300_000;
  for (;;) {
    const answer = await fetch(`${apiUrl}/v1/batches/${batchId}?wait=30`);
    const batch = BatchView.parse(await answer.json());
    if (batch.status === "succeeded") return acceptedMs;
    if (batch.status === "failed") throw new BenchApiError(`batch ${batchId} failed`);
    if (Date.now() > deadline) throw new BenchApiError(`batch ${batchId} still ${batch.status} after 300 s`);
  }
}
