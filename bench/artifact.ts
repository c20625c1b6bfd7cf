/**
 * Artifact collection of one large file: the job `head -c N /dev/urandom > big.bin` with
 * artifacts ["big.bin"], against the same job without artifacts (their durationMs differ by the
 * collection: listing, reading the file out of the container, hashing and storing it in R2).
 * Its floor: a raw `cp` of a file of the same size on the same filesystem, then `sync` of the copy.
 * The stack's memory (every workerd and node process) is sampled throughout.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { awaitFinished, BenchApiError, type BenchJob, cancelJob, type JobSubmission, submitJob } from "./apiClient";
import { sampleStackRss, stackMemory } from "./memory";

const run = promisify(execFile);

export interface ArtifactRun {
  bytes: number;
  /** durationMs of the job with the artifact, and of the same command alone. */
  withArtifactMs: number;
  commandAloneMs: number;
  /** cp + sync of a file of the same size on the same filesystem. */
  rawCopyMs: number;
  /** Peak of the stack's summed RSS during the artifact job, above its level just before; and by role. */
  stackRssGrowthKiB: number;
  growthByRoleKiB: Record<string, number>;
  /** Why the artifact job gave no figure (it failed or did not finish in time); the benchmark then exits non-zero. */
  failure?: string;
}

async function rawCopy(stateDir: string, bytes: number): Promise<number> {
  const dir = await mkdtemp(join(stateDir, "copy-floor-"));
  try {
    await run("sh", ["-c", `head -c ${bytes} /dev/urandom > source.bin && sync source.bin`], { cwd: dir });
    const started = performance.now();
    await run("cp", ["source.bin", "copy.bin"], { cwd: dir });
    await run("sync", ["copy.bin"], { cwd: dir });
    return performance.now() - started;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the job; one that fails or outlasts `waitMs` is cancelled and reported as the failure. */
async function timedJob(apiUrl: string, job: JobSubmission, waitMs: number): Promise<BenchJob | string> {
  const submitted = await submitJob(apiUrl, "bench-artifact", job);
  try {
    const finished = await awaitFinished(apiUrl, submitted.id, waitMs);
    if (finished.status !== "succeeded")
      return `job ${finished.id} ended ${finished.status}: ${finished.error?.message ?? finished.exitCode}`;
    if (finished.artifacts.length === 0 && job.artifacts?.length)
      return `job ${finished.id} stored no artifact: ${JSON.stringify(finished.skippedArtifacts)}`;
    return finished;
  } catch (error) {
    if (!(error instanceof BenchApiError)) throw error;
    // The stack is stopped afterwards anyway: a cancel it is too busy to answer loses nothing.
    const cancelled = await cancelJob(apiUrl, submitted.id).then(
      () => "cancelled",
      () => "cancel unanswered",
    );
    return `${error.message}; ${cancelled}`;
  }
}

export async function measureArtifact(
  apiUrl: string,
  stackPid: number,
  stateDir: string,
  bytes: number,
  waitMs: number,
): Promise<ArtifactRun> {
  const command = `head -c ${bytes} /dev/urandom > big.bin`;
  const timeoutMs = waitMs + 60_000;
  const rawCopyMs = await rawCopy(stateDir, bytes);
  const alone = await timedJob(apiUrl, { command, timeoutMs }, waitMs);
  const before = stackMemory(stackPid);
  const sampler = sampleStackRss(stackPid);
  const withArtifact = await timedJob(apiUrl, { command, timeoutMs, artifacts: ["big.bin"] }, waitMs).finally(() => sampler.stop());
  const peak = await sampler.stop();
  const growthByRoleKiB = Object.fromEntries(
    Object.entries(peak.rssByRoleKiB).map(([role, kib]) => [role, kib - (before.rssByRoleKiB[role] ?? 0)]),
  );
  const failure = [alone, withArtifact].find((outcome) => typeof outcome === "string");
  return {
    bytes,
    withArtifactMs: typeof withArtifact === "string" ? Number.NaN : (withArtifact.durationMs ?? Number.NaN),
    commandAloneMs: typeof alone === "string" ? Number.NaN : (alone.durationMs ?? Number.NaN),
    rawCopyMs,
    stackRssGrowthKiB: peak.stackRssKiB - before.stackRssKiB,
    growthByRoleKiB,
    failure: typeof failure === "string" ? failure : undefined,
  };
}
