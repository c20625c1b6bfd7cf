/**
 * A million-line output: `seq 1 1000000` as a job, timed by its try (starting the command, reading
 * its output, its end), against the same command in a raw bubblewrap exec writing its output to
 * a file, the same machine in the same run. The job keeps the head and tail of the output
 * (OUTPUT_MAX_BYTES), as it would deployed.
 */
import { runJob } from "./apiClient";
import { rawCommandMs } from "./bubblewrap";
import { percentile } from "./stats";

export interface FastOutputRun {
  /** Median of the jobs' try durations. */
  jobMs: number;
  /** Median of raw execs of the same command. */
  rawMs: number;
}

const COMMAND = "seq 1 1000000";
const SAMPLES = 5;

export async function measureFastOutput(apiUrl: string, stateDir: string, sandboxId: string): Promise<FastOutputRun> {
  await runJob(apiUrl, sandboxId, { command: "true" });
  const jobs: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const job = await runJob(apiUrl, sandboxId, { command: COMMAND });
    const tried = job.tries[0]?.durationMs;
    if (job.status !== "succeeded" || tried === undefined) throw new Error(`${COMMAND} ended ${job.status}: ${JSON.stringify(job.error)}`);
    jobs.push(tried);
    raw.push(await rawCommandMs(stateDir, `${COMMAND} > /workspace/out`));
  }
  return { jobMs: percentile(jobs, 50), rawMs: percentile(raw, 50) };
}
