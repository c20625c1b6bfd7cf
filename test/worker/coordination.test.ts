/**
 * Per-sandbox coordination through the real pipeline: one job at a time per sandbox, in
 * submission order, whatever the deliveries; no sandbox waits for another; a crashed runner's
 * job is taken over (what its command left running is ended first) and only the attempt that
 * finishes publishes; a stored cancel ends a job
 * even when the signal to its coordinator is lost; the sweeper drives on jobs nobody holds.
 */

import { createScheduledController, env, runInDurableObject } from "cloudflare:test";
import { getSandbox } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { coordinatorFor } from "../../coordinator/stubs";
import { startScript } from "../../sandbox/childCommand";
import { BatchView } from "../../schemas/job";
import { r2Keys, sandboxKey } from "../../storage/layout";
import worker from "../../worker";
import { api, getJob, postJson, runJob, submit, uniqueSandbox, waitForJob } from "./client";
import { deliver, inCoordinator, JOB_QUEUE, jobStore, recordOnly, TEST_TENANT } from "./support/jobs";
import { readEvents, textOf } from "./support/logEvents";

/**
 * Hands a recorded job to its coordinator as a runner that claimed it as `attempts` and then died
 * left it, its live log's end as its last lease renewal noted it.
 */
async function leftRunning(sandbox: string, jobId: string, attempts: number, liveLogEnd = { stdout: 0, stderr: 0 }): Promise<void> {
  const submitted = await jobStore().readSubmitted(jobId);
  if (!submitted) throw new Error("record missing");
  await inCoordinator(
    sandbox,
    `INSERT INTO job_state (job_id, status, submitted, attempts, started_at, lease_until, submitted_at, expires_at, live_log_end)
       VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)`,
    jobId,
    JSON.stringify(submitted),
    attempts,
    Date.now() - 5000,
    Date.now() - 1000,
    Date.now(),
    Date.parse(submitted.expiresAt),
    JSON.stringify(liveLogEnd),
  );
}

/** The live-log end its coordinator's table notes for a job, or null before any is noted. */
async function notedLiveLogEnd(sandbox: string, jobId: string): Promise<unknown> {
  const stub = coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandbox));
  const row = await runInDurableObject(
    stub,
    (_instance, state) => state.storage.sql.exec("SELECT live_log_end FROM job_state WHERE job_id = ?", jobId).toArray()[0],
  );
  const noted = z.object({ live_log_end: z.string().nullable() }).parse(row).live_log_end;
  return noted === null ? null : JSON.parse(noted);
}

/** Whether the local container host runs a container for the sandbox (started by anyone). */
async function hostRunsContainer(sandbox: string): Promise<boolean> {
  const response = await fetch(`${env.LOCAL_SANDBOX_URL}/v1/containers/${sandboxKey(TEST_TENANT, sandbox)}`, {
    headers: { authorization: `Bearer ${env.LOCAL_SANDBOX_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return z.object({ running: z.boolean() }).parse(await response.json()).running;
}

async function stdoutOf(jobId: string): Promise<string> {
  return (await api(`/v1/jobs/${jobId}/stdout`)).text();
}

describe("per-sandbox coordination", () => {
  it("runs a sandbox's jobs one at a time, each once, when only two concurrent handler invocations deliver them", async () => {
    const sandbox = uniqueSandbox("exclusive-queue");
    // Recorded but handed to nobody: the coordinator learns of them only from these deliveries.
    const messages = [];
    for (let i = 0; i < 6; i++) {
      messages.push(await recordOnly(sandbox, { command: `echo start-${i} >> log; sleep 0.2; echo end-${i} >> log` }));
    }
    await Promise.all([deliver(JOB_QUEUE, [...messages].reverse()), deliver(JOB_QUEUE, [...messages.slice(3), ...messages.slice(0, 3)])]);

    const finished = await Promise.all(messages.map((message) => waitForJob(message.jobId)));
    expect(finished.map((job) => [job.status, job.attempts])).toEqual(messages.map(() => ["succeeded", 1]));
    const log = (await stdoutOf((await runJob(sandbox, { type: "run", command: "cat log" })).id)).trim().split("\n");
    // Never two at once: every start is followed by its own end.
    expect(log).toHaveLength(12);
    for (let line = 0; line < log.length; line += 2) {
      expect(log[line + 1]).toBe(log[line]?.replace("start", "end"));
    }
    expect(new Set(log).size).toBe(12);
  });

  it("keeps submission order whatever order the queue delivers in (the API hands jobs over at submit)", async () => {
    const sandbox = uniqueSandbox("exclusive");
    const steps = Array.from({ length: 6 }, (_, i) => ({
      sandboxId: sandbox,
      job: { type: "run", command: `echo start-${i} >> log; sleep 0.2; echo end-${i} >> log` },
    }));
    const response = await postJson("/v1/jobs", { jobs: steps });
    expect(response.status).toBe(202);
    const jobs = BatchView.parse(await response.json()).jobs;
    const messages = jobs.map((job) => ({
      kind: "run",
      jobId: job.id,
      sandboxKey: sandboxKey(TEST_TENANT, sandbox),
    }));
    // Duplicates of every message, in two opposite orders, through two concurrent invocations.
    await Promise.all([deliver(JOB_QUEUE, [...messages].reverse()), deliver(JOB_QUEUE, [...messages.slice(3), ...messages.slice(0, 3)])]);

    const finished = await Promise.all(jobs.map((job) => waitForJob(job.id)));
    expect(finished.map((job) => [job.status, job.attempts])).toEqual(jobs.map(() => ["succeeded", 1]));
    const log = await runJob(sandbox, { type: "run", command: "cat log" });
    const expected = steps.flatMap((_, i) => [`start-${i}`, `end-${i}`]).join("\n");
    expect(await stdoutOf(log.id)).toBe(`${expected}\n`);
  });

  it("never lets a job in one sandbox wait for a long job in another", async () => {
    const long = await submit(uniqueSandbox("hol-a"), { type: "run", command: "sleep 20", timeoutMs: 60_000 });
    while ((await getJob(long.id)).status === "queued") await new Promise((resolve) => setTimeout(resolve, 20));
    const quick = await runJob(uniqueSandbox("hol-b"), { type: "run", command: "echo quick" });
    expect(quick.status).toBe("succeeded");
    expect((await getJob(long.id)).status).toBe("running");
    await api(`/v1/jobs/${long.id}/cancel`, { method: "POST" });
    expect((await waitForJob(long.id)).error?.code).toBe("CANCELLED");
  });

  it("takes over a job whose runner died, and publishes only the attempt that finished it", async () => {
    const sandbox = uniqueSandbox("takeover");
    const message = await recordOnly(sandbox, { command: "echo attempt-output > out.txt; cat out.txt", artifacts: ["out.txt"] });
    // A runner claimed it (attempt 1) and died: its coordinator's table says running, with a lease that lapsed.
    await leftRunning(sandbox, message.jobId, 1);
    // What the sweeper does: the coordinator is not running it, so it takes it over at once.
    await coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandbox)).reconcile([]);
    const finished = await waitForJob(message.jobId);
    expect(finished).toMatchObject({ status: "succeeded", attempts: 2 });

    // The dead attempt writes late: nothing the record describes changes.
    await env.JOB_OUTPUT.put(r2Keys.output(TEST_TENANT, message.jobId, 1, "stdout"), "stale\n");
    await env.JOB_OUTPUT.put(r2Keys.artifactPack(TEST_TENANT, message.jobId, 1), "stale\n");
    expect(await stdoutOf(message.jobId)).toBe("attempt-output\n");
    const artifact = await api(`/v1/jobs/${message.jobId}/artifacts/out.txt`);
    expect(await artifact.text()).toBe("attempt-output\n");
  });

  it("ends the command a dead runner left running in its container before running the job again", async () => {
    const sandbox = uniqueSandbox("takeover-live");
    // The sandbox's container runs (a first job started it).
    expect((await runJob(sandbox, { type: "run", command: "true" })).status).toBe("succeeded");
    const message = await recordOnly(sandbox, { command: "echo second-attempt" });
    await leftRunning(sandbox, message.jobId, 1);
    // The dead runner's command, started as a runner starts one, still runs: it would write late.txt.
    const container = getSandbox(env.Sandbox, sandboxKey(TEST_TENANT, sandbox));
    const wait = { stdout: { at: 0, headRoom: 1024 }, stderr: { at: 0, headRoom: 1024 }, tailBytes: 0, inlineBytes: 1024, waitMs: 0 };
    const stale = { command: "sleep 6; echo late > late.txt", cwd: "/workspace", env: {} };
    expect((await container.exec(startScript("dead-runner-run", stale, wait))).stdout).toContain("as-status 0 0 -");

    await coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandbox)).reconcile([]);
    expect(await waitForJob(message.jobId)).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(await stdoutOf(message.jobId)).toBe("second-attempt\n");
    // Past the moment the stale command would have written its file: it was ended, not left to run.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    const listing = await runJob(sandbox, { type: "run", command: "ls -a" });
    expect(await stdoutOf(listing.id)).not.toContain("late.txt");
  });

  it("notes where a running job's live output stands in its coordinator's table at a lease renewal, and forgets it at the end", async () => {
    const sandbox = uniqueSandbox("renewal-log");
    const job = await submit(sandbox, { type: "run", command: "printf 12345; printf ab >&2; sleep 14", timeoutMs: 60_000 });
    while ((await getJob(job.id)).status !== "running") await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await notedLiveLogEnd(sandbox, job.id)).toBeNull();
    // The lease is renewed every 10 s while the command runs.
    const deadline = Date.now() + 30_000;
    let noted = await notedLiveLogEnd(sandbox, job.id);
    while (noted === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      noted = await notedLiveLogEnd(sandbox, job.id);
    }
    expect(noted).toEqual({ stdout: 5, stderr: 2 });
    expect((await waitForJob(job.id)).status).toBe("succeeded");
    // Only a next attempt reads it: a finished job's row no longer holds it.
    expect(await notedLiveLogEnd(sandbox, job.id)).toBeNull();
  }, 60_000);

  it("numbers a taken-over job's live output on from the live-log end its coordinator's table holds for the dead attempt", async () => {
    const sandbox = uniqueSandbox("takeover-log");
    const message = await recordOnly(sandbox, { command: "sleep 1; echo again" });
    // The dead attempt's followers stood at 100 bytes of stdout.
    await leftRunning(sandbox, message.jobId, 1, { stdout: 100, stderr: 0 });
    await coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandbox)).reconcile([]);
    const live = await readEvents(await api(`/v1/jobs/${message.jobId}/logs`, { headers: { "last-event-id": "100.0" } }));
    expect(live.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded" } });
    expect(textOf(live, "stdout")).toBe("again\n");
    expect(live.filter((event) => event.event === "stdout").map((event) => event.id)).toEqual(["106.0"]);
    // After the end, the stored output (the second attempt's) sits at the same place.
    const fromStart = await readEvents(await api(`/v1/jobs/${message.jobId}/logs`));
    expect(fromStart.filter((event) => event.event === "gap").map((event) => event.data)).toEqual([
      { stream: "stdout", droppedBytes: 100 },
    ]);
    expect(textOf(fromStart, "stdout")).toBe("again\n");
  });

  it("runs a job with the longest documented timeout (it fits a fresh runner invocation)", async () => {
    const job = await runJob(uniqueSandbox("longest-timeout"), { type: "run", command: "echo fits", timeoutMs: 840_000 });
    expect(job.status).toBe("succeeded");
    expect(await stdoutOf(job.id)).toBe("fits\n");
  });

  it("fails a job whose runner died on every attempt instead of running it without end", async () => {
    const sandbox = uniqueSandbox("runner-lost");
    const message = await recordOnly(sandbox, { command: "true" });
    const maxAttempts = Number(env.MAX_JOB_ATTEMPTS);
    await leftRunning(sandbox, message.jobId, maxAttempts);
    await coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandbox)).reconcile([]);
    const failed = await waitForJob(message.jobId);
    expect(failed).toMatchObject({ status: "failed", attempts: maxAttempts, error: { code: "RUNNER_LOST" } });
    // Its sandbox had no container: none was started, outside its tenant's slots, to end commands it never had.
    expect(await hostRunsContainer(sandbox)).toBe(false);
  });

  it("ends a running job whose cancel was stored but never signalled, at its next lease renewal", async () => {
    const sandbox = uniqueSandbox("stored-cancel");
    const job = await submit(sandbox, { type: "run", command: "echo started; sleep 60", timeoutMs: 120_000 });
    while ((await getJob(job.id)).status !== "running") await new Promise((resolve) => setTimeout(resolve, 20));
    // What a cancel stores, without its signal to the running command.
    expect(await inCoordinator(sandbox, "UPDATE job_state SET cancel_requested = 1 WHERE job_id = ?", job.id)).toBe(1);

    const ended = await waitForJob(job.id);
    expect(ended.error?.code).toBe("CANCELLED");
    expect(ended.durationMs).toBeLessThan(30_000);
  }, 45_000);

  it("sweeps: a job nobody holds (message and handover lost) is handed to its sandbox and runs", async () => {
    const sandbox = uniqueSandbox("swept");
    const lost = await recordOnly(sandbox, { command: "echo swept" }, 120_000);
    expect((await getJob(lost.jobId)).status).toBe("queued");
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env);
    const finished = await waitForJob(lost.jobId);
    expect(finished.status).toBe("succeeded");
    expect(await stdoutOf(lost.jobId)).toBe("swept\n");
    // Once finished, it is off the sweeper's worklist (as soon as R2's spacing allows).
    const entry = r2Keys.undeliveredEntry(sandboxKey(TEST_TENANT, sandbox), lost.jobId);
    for (let i = 0; i < 50 && (await env.JOB_OUTPUT.head(entry)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await env.JOB_OUTPUT.head(entry)).toBeNull();
  });

  it("leaves a young job nobody holds yet to the queue that is still delivering it", async () => {
    const young = await recordOnly(uniqueSandbox("young"), { command: "true" });
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(z.string().parse((await getJob(young.jobId)).status)).toBe("queued");
  });
});
