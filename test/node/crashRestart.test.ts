/**
 * Crash recovery of the whole local stack: jobs are queued, running and finished when every
 * process of the stack is SIGKILLed at once (the Worker runtime, wrangler, the container host
 * and its containers). Started again on the same state, the stack must finish every job within
 * a minute, each with its artifact intact: no job stranded queued or running, none lost.
 */
import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { isTerminal, type JobView } from "../../schemas/job";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { freePort, type JobSubmission, listJobs, submitBatch, tempStateDir, waitUntilClosed } from "./devStack";

const SANDBOXES = Array.from({ length: 6 }, (_, index) => `crash-${index}`);
const JOBS_PER_SANDBOX = 10;
/**
 * What the issue promises: every job interrupted by a crash ends within a minute of the restart,
 * counted from when the API serves again (the stack's own boot, wrangler's, is printed apart: on a
 * loaded 2-core machine it alone takes 10-20 s, and deployed there is no such boot).
 */
const RECOVERY_BOUND_MS = 60_000;

/** Mostly 1-2 s jobs, and one 6 s job per sandbox that a crash is likely to catch mid-run. */
function crashJob(sandboxId: string, index: number): JobSubmission {
  const seconds = index === 3 ? 6 : 1 + (index % 2);
  return {
    type: "run",
    command: `sleep ${seconds}; echo "${expectedContent(sandboxId, index).trimEnd()}" > out.txt`,
    artifacts: ["out.txt"],
    timeoutMs: 60_000,
  };
}

function expectedContent(sandboxId: string, index: number): string {
  return `${sandboxId} job ${index}\n`;
}

function countByStatus(jobs: JobView[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const job of jobs) counts[job.status] = (counts[job.status] ?? 0) + 1;
  return counts;
}

describe("the local stack after a crash (SIGKILL of every process)", () => {
  let stack: DevProcess | undefined;
  let stateDir: string | undefined;

  afterAll(async () => {
    await stack?.kill();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("finishes every queued and running job within a minute of the restart, artifacts intact", { timeout: 240_000 }, async () => {
    stateDir = await tempStateDir("crash-restart-");
    const ports = { apiPort: await freePort(), hostPort: await freePort() };
    stack = await startDevProcess({ ...ports, stateDir });
    const apiUrl = stack.apiUrl;

    // Job i of sandbox s is submitted as jobs[s * 10 + i]; a sandbox runs its jobs in that order.
    const submissions = SANDBOXES.flatMap((sandboxId) =>
      Array.from({ length: JOBS_PER_SANDBOX }, (_, index) => ({ sandboxId, job: crashJob(sandboxId, index) })),
    );
    const submitted = await submitBatch(apiUrl, submissions);
    expect(submitted).toHaveLength(submissions.length);
    const expected = new Map(
      submitted.map((job, position) => [job.id, expectedContent(job.sandboxId, position % JOBS_PER_SANDBOX)] as const),
    );

    // Crash once work is under way everywhere: some jobs done, several running, most still queued.
    // Waiting for that state rather than a fixed delay keeps the test meaningful on a slow machine.
    let beforeCrash: JobView[] = [];
    const underWayBy = Date.now() + 60_000;
    for (;;) {
      beforeCrash = await listJobs(apiUrl, SANDBOXES);
      const counts = countByStatus(beforeCrash);
      if ((counts.succeeded ?? 0) >= 1 && (counts.running ?? 0) >= 3) break;
      if (Date.now() > underWayBy) throw new Error(`work never got under way: ${JSON.stringify(counts)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await stack.kill();
    stack = undefined;
    console.log(`crashed with jobs ${JSON.stringify(countByStatus(beforeCrash))}`);
    expect(beforeCrash.filter((job) => !isTerminal(job.status)).length).toBeGreaterThan(JOBS_PER_SANDBOX);

    await waitUntilClosed(ports.apiPort, 10_000);
    await waitUntilClosed(ports.hostPort, 10_000);
    const restartedAt = Date.now();
    stack = await startDevProcess({ ...ports, stateDir });
    const servingAt = Date.now();
    const servingMs = servingAt - restartedAt;

    let jobs: JobView[] = [];
    // Polled past the bound, so that a slow recovery is measured, not just reported as too slow.
    while (Date.now() - servingAt < 2 * RECOVERY_BOUND_MS) {
      jobs = await listJobs(apiUrl, SANDBOXES);
      if (jobs.length === expected.size && jobs.every((job) => isTerminal(job.status))) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const recoveryMs = Date.now() - servingAt;
    console.log(
      `recovery: API serving again ${(servingMs / 1000).toFixed(1)} s after the restart began, ` +
        `all ${expected.size} jobs finished ${(recoveryMs / 1000).toFixed(1)} s after that; final ${JSON.stringify(countByStatus(jobs))}`,
    );

    const resumedAt = Math.min(
      ...jobs.flatMap((job) => (job.startedAt && Date.parse(job.startedAt) > restartedAt ? [Date.parse(job.startedAt)] : [])),
    );
    console.log(`the first job after the restart started ${((resumedAt - restartedAt) / 1000).toFixed(1)} s after it`);
    expect(jobs.map((job) => job.id).sort()).toEqual([...expected.keys()].sort());
    const unfinished = jobs.filter((job) => job.status !== "succeeded");
    expect(unfinished.map((job) => ({ id: job.id, sandbox: job.sandboxId, status: job.status, error: job.error }))).toEqual([]);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);

    for (const job of jobs) {
      expect(job.attempts).toBeGreaterThanOrEqual(1);
      const artifact = job.artifacts.find((candidate) => candidate.path === "out.txt");
      if (!artifact) throw new Error(`job ${job.id} has no out.txt artifact: ${JSON.stringify(job.skippedArtifacts)}`);
      const response = await fetch(artifact.url);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(expected.get(job.id));
    }
    // The jobs that were running when the stack died ran again, as their next attempt (one that
    // finished between the listing and the kill kept its attempt).
    const runningAtCrash = beforeCrash.filter((job) => job.status === "running");
    const rerun = runningAtCrash.filter((before) => Date.parse(jobs.find((job) => job.id === before.id)?.finishedAt ?? "") > restartedAt);
    expect(rerun.length).toBeGreaterThan(0);
    for (const before of runningAtCrash) {
      const after = jobs.find((job) => job.id === before.id);
      expect(after?.attempts).toBe(rerun.includes(before) ? before.attempts + 1 : before.attempts);
    }
    const retried = jobs.filter((job) => job.attempts > 1).length;
    console.log(`${retried} job(s) ran more than once (taken over after the crash)`);

    await stack.stop();
    stack = undefined;
  });
});
