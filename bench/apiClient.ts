/** The benchmark's client of the job API: submit a job, wait for it to finish, cancel it. Answers are validated with the API's own schemas. */
import { isTerminal, JobView, type RunJobRequest } from "../schemas/job";

/** What the benchmark reads of a job. */
const BenchJob = JobView.pick({
  id: true,
  status: true,
  exitCode: true,
  durationMs: true,
  tries: true,
  error: true,
  artifacts: true,
  skippedArtifacts: true,
});
export type BenchJob = ReturnType<typeof BenchJob.parse>;

export type JobSubmission = Partial<RunJobRequest> & Pick<RunJobRequest, "command">;

/** Thrown when the API answers something other than what the benchmark asked for: a real error, not a slow run. */
export class BenchApiError extends Error {}

async function parseAnswer(response: Response, expectedStatus: number, what: string): Promise<BenchJob> {
  const text = await response.text();
  if (response.status !== expectedStatus) throw new BenchApiError(`${what} answered ${response.status}: ${text.slice(0, 500)}`);
  const parsed = BenchJob.safeParse(JSON.parse(text));
  if (!parsed.success) throw new BenchApiError(`${what} answered an unexpected body: ${parsed.error.message}`);
  return parsed.data;
}

/** Submits a job, anonymously (the local stack's tenant `local`) or with an API key. */
export async function submitJob(apiUrl: string, sandboxId: string, job: JobSubmission, apiKey?: string): Promise<BenchJob> {
  const response = await fetch(`${apiUrl}/v1/sandboxes/${sandboxId}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({ type: "run", ...job }),
  });
  return parseAnswer(response, 202, `submit to ${sandboxId}`);
}

/** Long-polls until the job has finished; throws once `timeoutMs` has passed. */
export async function awaitFinished(apiUrl: string, jobId: string, timeoutMs = 120_000): Promise<BenchJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const waitSeconds = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
    // A stack too busy to answer at all must not hang the benchmark: the poll gets a deadline of its own.
    const response = await fetch(`${apiUrl}/v1/jobs/${jobId}?wait=${waitSeconds}`, {
      signal: AbortSignal.timeout((waitSeconds + 30) * 1000),
    }).catch((error: unknown) => {
      throw new BenchApiError(`polling job ${jobId} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    const job = await parseAnswer(response, 200, `job ${jobId}`);
    if (isTerminal(job.status)) return job;
    if (Date.now() >= deadline) throw new BenchApiError(`job ${jobId} was still ${job.status} after ${timeoutMs} ms`);
  }
}

/** Reads the job once, without waiting. */
export async function readJob(apiUrl: string, jobId: string): Promise<BenchJob> {
  return parseAnswer(await fetch(`${apiUrl}/v1/jobs/${jobId}`), 200, `job ${jobId}`);
}

export async function cancelJob(apiUrl: string, jobId: string): Promise<void> {
  const response = await fetch(`${apiUrl}/v1/jobs/${jobId}/cancel`, { method: "POST", signal: AbortSignal.timeout(30_000) });
  await response.body?.cancel();
  if (response.status !== 200 && response.status !== 202 && response.status !== 409)
    throw new BenchApiError(`cancel of ${jobId} answered ${response.status}`);
}

/** Submits a job and waits for it; a job that does not succeed is a real error. */
export async function runJob(apiUrl: string, sandboxId: string, job: JobSubmission, timeoutMs?: number): Promise<BenchJob> {
  const submitted = await submitJob(apiUrl, sandboxId, job);
  const finished = await awaitFinished(apiUrl, submitted.id, timeoutMs);
  if (finished.status !== "succeeded")
    throw new BenchApiError(
      `job ${finished.id} in ${sandboxId} ended ${finished.status}: ${finished.error?.message ?? `exit ${finished.exitCode}`}`,
    );
  return finished;
}
